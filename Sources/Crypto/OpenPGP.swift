internal import CGPGME
internal import Glibc

/// An error reported by gpgme / GnuPG: the gpg-error code and source, and gpgme_strerror's text.
public struct GPGError: Error, Equatable, CustomStringConvertible {
    public let code: UInt32
    public let source: UInt32
    public let message: String

    public init(code: UInt32, source: UInt32, message: String) {
        self.code = code
        self.source = source
        self.message = message
    }

    /// GPG_ERR_NO_SECKEY: the message is for a key whose secret part this GNUPGHOME does not have.
    public var isNoSecretKey: Bool { code == 17 }
    /// GPG_ERR_DECRYPT_FAILED, GPG_ERR_BAD_PASSPHRASE, GPG_ERR_CANCELED, GPG_ERR_NO_PASSPHRASE.
    public var isUnlockFailure: Bool { [152, 11, 99, 177].contains(code) || isNoSecretKey }

    public var description: String { message }

    static func from(_ err: gpgme_error_t, _ what: String) -> GPGError {
        let text = gpgme_strerror(err).map { String(cString: $0) } ?? "error \(err)"
        return GPGError(code: UInt32(coffer_gpgme_err_code(err)), source: UInt32(coffer_gpgme_err_source(err)),
                        message: "\(what): \(text)")
    }
}

/// A thin wrapper over gpgme for OpenPGP key slots: encrypt to recipients' public keys, decrypt
/// through gpg-agent (which may hold the key on a smartcard). Honours GNUPGHOME like gpg itself.
/// When COFFER_GPG_PASSPHRASE is set, decryption uses loopback pinentry with that passphrase.
public final class OpenPGP {
    private let ctx: gpgme_ctx_t
    /// Passphrase for the loopback pinentry callback (zeroed in deinit).
    fileprivate var passphrase: [UInt8]?

    private static let initialized: Bool = {
        guard coffer_gpgme_check_version() != nil else { return false }
        return gpgme_engine_check_version(GPGME_PROTOCOL_OpenPGP) == 0
    }()

    public init() throws {
        guard OpenPGP.initialized else {
            throw GPGError(code: 0, source: 0, message: "gpgme: GnuPG (gpg) is not installed or too old for OpenPGP key slots")
        }
        var c: gpgme_ctx_t?
        let err = gpgme_new(&c)
        guard err == 0, let c else { throw GPGError.from(err, "gpgme_new") }
        ctx = c
        gpgme_set_protocol(ctx, GPGME_PROTOCOL_OpenPGP)
        gpgme_set_armor(ctx, 1)
    }

    deinit {
        gpgme_release(ctx)
        if var p = passphrase { for i in p.indices { p[i] = 0 } }
    }

    // MARK: - Static conveniences

    /// ASCII-armored OpenPGP message of `data` for every recipient (always trusting their keys).
    public static func encrypt(_ data: [UInt8], recipients: [String]) throws -> [UInt8] {
        try OpenPGP().encrypt(data, recipients: recipients)
    }

    /// Decrypts an OpenPGP message through gpg-agent.
    public static func decrypt(_ data: [UInt8]) throws -> [UInt8] {
        try OpenPGP().decrypt(data)
    }

    /// The primary-key fingerprint of each recipient (user id, e-mail, key id or fingerprint).
    public static func fingerprints(of recipients: [String]) throws -> [String] {
        try OpenPGP().fingerprints(of: recipients)
    }

    // MARK: - Operations

    public func fingerprints(of recipients: [String]) throws -> [String] {
        let keys = try lookUp(recipients)
        defer { keys.forEach { gpgme_key_unref($0) } }
        return keys.map { $0.pointee.fpr.map { String(cString: $0) } ?? "" }
    }

    public func encrypt(_ data: [UInt8], recipients: [String]) throws -> [UInt8] {
        guard !recipients.isEmpty else { throw GPGError(code: 0, source: 0, message: "OpenPGP: no recipient given") }
        let keys = try lookUp(recipients)
        defer { keys.forEach { gpgme_key_unref($0) } }
        var list: [gpgme_key_t?] = keys + [nil]
        let plain = try Data(data)
        let cipher = try Data()
        let err = list.withUnsafeMutableBufferPointer {
            gpgme_op_encrypt(ctx, $0.baseAddress, GPGME_ENCRYPT_ALWAYS_TRUST, plain.handle, cipher.handle)
        }
        guard err == 0 else {
            if let r = gpgme_op_encrypt_result(ctx), let bad = r.pointee.invalid_recipients {
                let who = bad.pointee.fpr.map { String(cString: $0) } ?? "?"
                throw GPGError.from(bad.pointee.reason != 0 ? bad.pointee.reason : err, "OpenPGP: cannot encrypt to \(who)")
            }
            throw GPGError.from(err, "OpenPGP encryption")
        }
        return cipher.bytes()
    }

    public func decrypt(_ data: [UInt8]) throws -> [UInt8] {
        if let p = getenv("COFFER_GPG_PASSPHRASE") {
            passphrase = Array(String(cString: p).utf8)
            let err = gpgme_set_pinentry_mode(ctx, GPGME_PINENTRY_MODE_LOOPBACK)
            guard err == 0 else { throw GPGError.from(err, "OpenPGP: cannot use loopback pinentry") }
            gpgme_set_passphrase_cb(ctx, passphraseCallback, Unmanaged.passUnretained(self).toOpaque())
        }
        let cipher = try Data(data)
        let plain = try Data()
        let err = gpgme_op_decrypt(ctx, cipher.handle, plain.handle)
        guard err == 0 else { throw GPGError.from(err, "OpenPGP decryption") }
        return plain.bytes()
    }

    /// Each recipient resolves to exactly one usable public key (the first valid match that can encrypt).
    private func lookUp(_ recipients: [String]) throws -> [gpgme_key_t] {
        var keys: [gpgme_key_t] = []
        do {
            for r in recipients {
                var err = gpgme_op_keylist_start(ctx, r, 0)
                guard err == 0 else { throw GPGError.from(err, "OpenPGP: looking up recipient \"\(r)\"") }
                var found: gpgme_key_t?
                while true {
                    var k: gpgme_key_t?
                    err = gpgme_op_keylist_next(ctx, &k)
                    if err != 0 { break }
                    guard let k else { break }
                    if found == nil, k.pointee.can_encrypt != 0, k.pointee.revoked == 0, k.pointee.expired == 0,
                       k.pointee.disabled == 0, k.pointee.invalid == 0 {
                        found = k
                    } else {
                        gpgme_key_unref(k)
                    }
                }
                gpgme_op_keylist_end(ctx)
                if err != 0, coffer_gpgme_err_code(err) != coffer_gpgme_eof_code() {
                    if let found { gpgme_key_unref(found) }
                    throw GPGError.from(err, "OpenPGP: looking up recipient \"\(r)\"")
                }
                guard let found else {
                    throw GPGError(code: 9, source: 7, message: "OpenPGP: no usable public key for recipient \"\(r)\" in the keyring (GNUPGHOME); import it first with 'gpg --import'")
                }
                keys.append(found)
            }
        } catch {
            keys.forEach { gpgme_key_unref($0) }
            throw error
        }
        return keys
    }

    /// A gpgme data buffer owned by Swift.
    private final class Data {
        let handle: gpgme_data_t
        private var copy: [UInt8]?

        init() throws {
            var h: gpgme_data_t?
            let err = gpgme_data_new(&h)
            guard err == 0, let h else { throw GPGError.from(err, "gpgme_data_new") }
            handle = h
        }

        init(_ bytes: [UInt8]) throws {
            var h: gpgme_data_t?
            let err = bytes.withUnsafeBufferPointer { b in
                b.baseAddress!.withMemoryRebound(to: CChar.self, capacity: max(b.count, 1)) {
                    gpgme_data_new_from_mem(&h, $0, b.count, 1)
                }
            }
            guard err == 0, let h else { throw GPGError.from(err, "gpgme_data_new_from_mem") }
            handle = h
        }

        deinit { gpgme_data_release(handle) }

        /// Everything written to the buffer.
        func bytes() -> [UInt8] {
            var out: [UInt8] = []
            _ = gpgme_data_seek(handle, 0, SEEK_SET)
            var buf = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = buf.withUnsafeMutableBytes { gpgme_data_read(handle, $0.baseAddress, $0.count) }
                if n <= 0 { break }
                out += buf[0..<n]
            }
            for i in buf.indices { buf[i] = 0 }
            return out
        }
    }
}

/// Loopback pinentry: writes the passphrase (from COFFER_GPG_PASSPHRASE) to gpg-agent. Capture-free;
/// the OpenPGP instance arrives through `hook`. A rejected passphrase is not retried.
private func passphraseCallback(hook: UnsafeMutableRawPointer?, uidHint: UnsafePointer<CChar>?, info: UnsafePointer<CChar>?,
                                prevWasBad: Int32, fd: Int32) -> gpgme_error_t {
    guard let hook, prevWasBad == 0 else { return coffer_gpgme_canceled() }
    let pgp = Unmanaged<OpenPGP>.fromOpaque(hook).takeUnretainedValue()
    var line = (pgp.passphrase ?? []) + [0x0a]
    defer { for i in line.indices { line[i] = 0 } }
    let n = line.withUnsafeBytes { gpgme_io_writen(fd, $0.baseAddress, $0.count) }
    return n == 0 ? 0 : coffer_gpgme_canceled()
}
