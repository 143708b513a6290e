import Foundation
import Crypto

/// Passphrase KDF parameters, stored in each passphrase slot: Argon2id (RFC 9106; new slots)
/// or scrypt (RFC 7914; slots made before Argon2id, still read).
public struct KDFParameters: Codable, Sendable, Equatable {
    public var name: String
    /// scrypt: cost N and block size r.
    public var n: UInt64?
    public var r: UInt64?
    /// Argon2id: passes t and memory m in KiB.
    public var t: UInt32?
    public var m: UInt32?
    /// scrypt: parallelism p; Argon2id: lanes p.
    public var p: UInt64
    public var salt: String          // base64, random: 16 bytes (new Argon2id slots) or 32 (older slots, scrypt)

    /// Default: Argon2id with 64 MiB, t = 3 (the memory and passes of RFC 9106's second
    /// recommended option) in one lane with a 16-byte salt, which libsodium's SIMD code
    /// computes in ~0.18 s of one core here (libargon2's four scalar lanes: ~0.25 s of two).
    public static let defaultMemory = 64 << 20

    /// Argon2id with `memoryBytes` of memory (rounded down to KiB), t = 3, p = 1, a fresh 16-byte salt.
    public static func argon2id(memoryBytes: Int) -> KDFParameters {
        KDFParameters(name: "argon2id", t: 3, m: UInt32(max(32, min(memoryBytes >> 10, Int(UInt32.max)))), p: 1,
                      salt: freshSalt(count: 16))
    }

    /// scrypt using `memoryBytes` of memory (128·r·N), r = 8, p = 2, with a fresh salt.
    public static func scrypt(memoryBytes: Int) -> KDFParameters {
        var n: UInt64 = 1024
        while 128 * 8 * n * 2 <= UInt64(memoryBytes) { n *= 2 }
        return KDFParameters(name: "scrypt", n: n, r: 8, p: 2, salt: freshSalt())
    }

    private static func freshSalt(count: Int = 32) -> String { Data(SecureRandom.bytes(count: count)).base64EncodedString() }

    /// The same cost with a new random salt of the same length (for a replacement slot).
    public func withFreshSalt() -> KDFParameters {
        var k = self
        k.salt = KDFParameters.freshSalt(count: Data(base64Encoded: salt).map { max(16, $0.count) } ?? 32)
        return k
    }

    func derive(_ passphrase: [UInt8]) throws -> [UInt8] {
        guard let s = Data(base64Encoded: salt), s.count >= 8 else { throw StoreError(.corrupt, "key slot has a bad KDF salt") }
        switch name {
        case "argon2id":
            // At most 4 GiB and 64 passes: a hostile slot cannot exhaust the host.
            guard let t, let m, t >= 1, t <= 64, p >= 1, p <= 64, UInt64(m) >= 8 * p, m <= 4 << 20 else {
                throw StoreError(.corrupt, "key slot has implausible argon2id parameters t=\(t.map(String.init) ?? "-") m=\(m.map(String.init) ?? "-") p=\(p)")
            }
            return try Argon2id.deriveKey(password: passphrase, salt: Array(s), iterations: t, memoryKiB: m,
                                          lanes: UInt32(p), length: 32)
        case "scrypt":
            // At most 2 GiB of scrypt memory (128·r·N) and 64× that much work.
            guard let n, let r, n >= 2, n & (n - 1) == 0, n <= 1 << 24, r >= 1, r <= 32, p >= 1, p <= 16,
                  128 * r * n <= 2 << 30, 128 * r * n * p <= 64 << 30 else {
                throw StoreError(.corrupt, "key slot has implausible scrypt parameters N=\(n.map(String.init) ?? "-") r=\(r.map(String.init) ?? "-") p=\(p)")
            }
            return try Scrypt.deriveKey(password: passphrase, salt: Array(s), n: n, r: r, p: p, length: 32)
        default:
            throw StoreError(.unsupported, "key slot uses unsupported KDF \(name)")
        }
    }
}

/// One key slot: a file `keys/<sha256 of the file>` wrapping the repository master secret.
///
/// Version 1 knows the `passphrase` kind: KEK = Argon2id or scrypt(passphrase, salt), wrapped = AES-256-KW
/// (RFC 3394) of the 64-byte master secret. The `openpgp` kind holds an armored OpenPGP message
/// of the master secret to `recipients` (decrypted through gpg-agent). New kinds (write-only)
/// add new `kind` values and fields; readers skip slots whose kind they do not know.
public struct KeyFile: Codable, Sendable {
    public var version: Int = 1
    public var kind: String
    public var repository: String          // repository id (hex): a slot only opens its own repository
    public var created: String
    public var hostname: String
    public var username: String
    public var label: String?
    public var kdf: KDFParameters?
    public var wrap: String?
    public var wrappedKey: String?
    /// `openpgp` slots: primary-key fingerprints of the recipients the master secret is encrypted to.
    public var recipients: [String]?
    /// `write-only` records: the writer id (32 hex digits) of the write-only key.
    public var writer: String?
    /// Key generation of the master secret a slot wraps, or that a `write-only` key or a
    /// `generation` record belongs to (absent = 0).
    public var generation: UInt32?
    /// `generation` records: the generation's X25519 public key (base64).
    public var publicKey: String?
    /// `generation` records: the sealed rotation secrets (base64; docs/FORMAT.md §3.1).
    public var sealed: String?

    enum CodingKeys: String, CodingKey {
        case version, kind, repository, created, hostname, username, label, kdf, wrap, recipients, writer, generation, sealed
        case wrappedKey = "wrapped_key", publicKey = "public_key"
    }

    /// The generation, 0 when absent.
    public var keyGeneration: UInt32 { generation ?? 0 }

    /// An OpenPGP slot: `wrapped_key` is the ASCII-armored OpenPGP message (gpgme, always-trust) of
    /// the 64-byte master secret, encrypted to every recipient's public key.
    public static func openPGP(recipients: [String], master: SecretBytes, repositoryID: [UInt8],
                               label: String?, generation: UInt32 = 0) throws -> KeyFile {
        let message: [UInt8]
        let fingerprints: [String]
        do {
            fingerprints = try OpenPGP.fingerprints(of: recipients)
            message = try master.withUnsafeBytes { try OpenPGP.encrypt(Array($0), recipients: fingerprints) }
        } catch let e as GPGError {
            throw StoreError(.invalidArgument, e.message)
        }
        return KeyFile(kind: "openpgp", repository: Hex.encode(repositoryID), created: Timestamp.now().rfc3339,
                       hostname: SystemInfo.hostname, username: SystemInfo.username, label: label,
                       kdf: nil, wrap: nil, wrappedKey: String(decoding: message, as: UTF8.self),
                       recipients: fingerprints, generation: generation == 0 ? nil : generation)
    }

    /// Decrypts an `openpgp` slot through gpg-agent. Throws GPGError when gpg cannot (no secret
    /// key, wrong passphrase); nil when this is not an OpenPGP slot.
    public func unlockOpenPGP() throws -> SecretBytes? {
        guard kind == "openpgp", let w = wrappedKey else { return nil }
        var m = try OpenPGP.decrypt(Array(w.utf8))
        defer { secureZero(&m) }
        guard m.count == RepositoryKeys.masterLength else {
            throw StoreError(.corrupt, "OpenPGP key slot holds a key of unexpected length \(m.count)")
        }
        return SecretBytes(m)
    }

    /// A passphrase slot wrapping `master`.
    public static func passphrase(_ passphrase: [UInt8], master: SecretBytes, repositoryID: [UInt8],
                                  kdf: KDFParameters, label: String?, generation: UInt32 = 0) throws -> KeyFile {
        var kek = try kdf.derive(passphrase)
        defer { secureZero(&kek) }
        let wrapped = try master.withUnsafeBytes { try AESKeyWrap.wrap(kek: kek, plaintext: Array($0)) }
        return KeyFile(kind: "passphrase", repository: Hex.encode(repositoryID), created: Timestamp.now().rfc3339,
                       hostname: SystemInfo.hostname, username: SystemInfo.username, label: label,
                       kdf: kdf, wrap: "aes256-kw", wrappedKey: Data(wrapped).base64EncodedString(),
                       generation: generation == 0 ? nil : generation)
    }

    /// Unwraps the master secret; nil when the passphrase does not open this slot.
    public func unlock(_ passphrase: [UInt8]) throws -> SecretBytes? {
        guard kind == "passphrase", let kdf, wrap == "aes256-kw",
              let w = wrappedKey.flatMap({ Data(base64Encoded: $0) }) else { return nil }
        var kek = try kdf.derive(passphrase)
        defer { secureZero(&kek) }
        do {
            var m = try AESKeyWrap.unwrap(kek: kek, wrapped: Array(w))
            defer { secureZero(&m) }
            guard m.count == RepositoryKeys.masterLength else {
                throw StoreError(.corrupt, "key slot holds a key of unexpected length \(m.count)")
            }
            return SecretBytes(m)
        } catch CryptoError.authenticationFailed {
            return nil
        }
    }

    public func encoded() throws -> [UInt8] {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        return Array(try enc.encode(self)) + [0x0a]
    }

    public static func decode(_ bytes: [UInt8], name: String) throws -> KeyFile {
        do { return try JSONDecoder().decode(KeyFile.self, from: Data(bytes)) } catch {
            throw StoreError(.corrupt, "key slot \(name): not a valid key file")
        }
    }
}
