internal import CArgon2

/// The one call into libargon2: `argon2_ctx` for Argon2id, version 0x13. Every pointer it
/// takes stays inside this function; the output is wiped before an error is reported.
enum Argon2Library {
    static func argon2id(password: [UInt8], salt: [UInt8], secret: [UInt8], associatedData: [UInt8],
                         iterations: UInt32, memoryKiB: UInt32, lanes: UInt32, threads: UInt32,
                         length: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: length)
        var password = password, salt = salt, secret = secret, ad = associatedData
        let rc: Int32 = out.withUnsafeMutableBufferPointer { o in
            password.withUnsafeMutableBufferPointer { p in
                salt.withUnsafeMutableBufferPointer { s in
                    secret.withUnsafeMutableBufferPointer { k in
                        ad.withUnsafeMutableBufferPointer { a in
                            var context = argon2_context(
                                out: o.baseAddress, outlen: UInt32(o.count),
                                pwd: p.baseAddress, pwdlen: UInt32(p.count),
                                salt: s.baseAddress, saltlen: UInt32(s.count),
                                secret: k.baseAddress, secretlen: UInt32(k.count),
                                ad: a.baseAddress, adlen: UInt32(a.count),
                                t_cost: iterations, m_cost: memoryKiB, lanes: lanes, threads: threads,
                                version: UInt32(ARGON2_VERSION_13.rawValue),
                                allocate_cbk: nil, free_cbk: nil, flags: 0)   // ARGON2_DEFAULT_FLAGS
                            return argon2_ctx(&context, Argon2_id)
                        }
                    }
                }
            }
        }
        secureZero(&password)
        guard rc == ARGON2_OK.rawValue else {
            secureZero(&out)
            throw CryptoError.invalidParameter("argon2id: \(String(cString: argon2_error_message(rc)))")
        }
        return out
    }
}
