import Foundation

/// The plaintext `config` object: format version, repository id and chunking
/// parameters. It holds no secret; the id is bound into every derived key
/// (HKDF salt), so tampering with it only makes the repository unreadable.
public struct RepositoryConfig: Codable, Sendable {
    /// Written by `init`. Version 2 names packs by their header (``PackNaming/header``);
    /// version 1 repositories keep naming every pack by the whole file.
    public static let currentVersion = 2
    /// The versions this code reads and writes (each keeps its own pack naming).
    public static let supportedVersions = 1...2
    public var version: Int
    public var id: String                 // 32 random bytes, hex
    public var created: String
    public var chunkerMinSize: Int
    public var chunkerAvgSize: Int
    public var chunkerMaxSize: Int
    /// FastCDC normalization level; absent in configs written before it was recorded (= 2).
    public var chunkerNormalization: Int?
    public var packSize: Int

    enum CodingKeys: String, CodingKey {
        case version, id, created
        case chunkerMinSize = "chunker_min_size"
        case chunkerAvgSize = "chunker_avg_size"
        case chunkerMaxSize = "chunker_max_size"
        case chunkerNormalization = "chunker_normalization"
        case packSize = "pack_size"
    }

    public static func new() -> RepositoryConfig {
        let p = ChunkerParameters.standard
        return RepositoryConfig(version: currentVersion, id: Hex.encode(SecureRandomBytes.get(32)),
                                created: Timestamp.now().rfc3339, chunkerMinSize: p.minSize,
                                chunkerAvgSize: p.avgSize, chunkerMaxSize: p.maxSize,
                                chunkerNormalization: p.normalization, packSize: 32 << 20)
    }

    public var idBytes: [UInt8] { Hex.decode(id) ?? [] }
    /// How this repository's packs are named (docs/FORMAT.md §6): fixed by the version.
    public var packNaming: PackNaming { version >= 2 ? .header : .wholeFile }
    public var shortID: String { String(id.prefix(8)) }
    public var chunkerParameters: ChunkerParameters {
        ChunkerParameters(minSize: chunkerMinSize, avgSize: chunkerAvgSize, maxSize: chunkerMaxSize,
                          normalization: chunkerNormalization ?? ChunkerParameters.legacyNormalization)
    }

    public func encoded() throws -> [UInt8] {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        return Array(try enc.encode(self)) + [0x0a]
    }

    public static func decode(_ bytes: [UInt8], location: String) throws -> RepositoryConfig {
        let c: RepositoryConfig
        do { c = try JSONDecoder().decode(RepositoryConfig.self, from: Data(bytes)) } catch {
            throw StoreError(.corrupt, "\(location)/config: not a Coffer repository config")
        }
        guard supportedVersions.contains(c.version) else {
            throw StoreError(.unsupported, "\(location): repository format version \(c.version) is not supported (this coffer reads versions \(supportedVersions.lowerBound) to \(supportedVersions.upperBound))")
        }
        guard c.idBytes.count == 32,
              c.chunkerMinSize >= 64, c.chunkerMinSize < c.chunkerAvgSize, c.chunkerAvgSize < c.chunkerMaxSize,
              c.chunkerAvgSize & (c.chunkerAvgSize - 1) == 0, c.chunkerMaxSize <= 64 << 20,
              c.chunkerAvgSize >= 1 << 4, ChunkerParameters.normalizationLevels.contains(c.chunkerNormalization ?? ChunkerParameters.legacyNormalization),
              c.packSize >= 1 << 20, c.packSize <= 1 << 30 else {
            throw StoreError(.corrupt, "\(location)/config: implausible parameters")
        }
        return c
    }
}
