import Crypto

/// Content addresses for objects (pack, index, snapshot and key-slot names).
enum SHA256Digest {
    static func of(_ bytes: [UInt8]) -> [UInt8] { SHA256.hash(bytes) }
}
