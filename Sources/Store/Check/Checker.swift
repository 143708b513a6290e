import Crypto
import Glibc

/// Verifies a repository from the repository alone (never trusting the local catalog):
/// - every index file decrypts and every pack it names exists and is large enough;
/// - every snapshot decrypts and every tree reachable from it decrypts and parses;
/// - every blob a tree references is in the index;
/// - with `readData`, every pack is read in full: its name must match (SHA-256 of its header
///   and trailer, or of the whole file in version-1 repositories), its header must decrypt,
///   and every blob must decrypt, decompress and match its id (HMAC).
/// Damage is reported naming the pack and every snapshot file that uses it.
public final class Checker {
    public struct Report: Sendable {
        public var errors: [String] = []
        public var warnings: [String] = []
        public var snapshots = 0
        public var trees = 0
        public var packs = 0
        public var blobs = 0
        public var bytesRead: Int64 = 0
        public var ok: Bool { errors.isEmpty }
    }

    private let repo: Repository
    private var report = Report()
    /// The repository's index, read afresh into a temporary SQLite file (not the cached
    /// catalog, and not RAM: memory stays bounded whatever the repository size).
    private var index: Catalog!
    private var indexPath = ""
    private var damagedBlobs: [BlobID: String] = [:]     // blob -> pack it was found damaged in
    private var checkedTrees = Set<BlobID>()
    public var onProgress: ((String) -> Void)?

    public init(repository: Repository) { repo = repository }

    public func run(readData: Bool) throws -> Report {
        let backend = repo.backend
        indexPath = RawPath(repo.catalog.path).parent.appending("check-\(getpid()).sqlite").description
        try? Posix.remove(RawPath(indexPath))
        index = try Catalog(path: indexPath, repositoryID: repo.config.id)
        defer {
            index = nil
            for suffix in ["", "-wal", "-shm"] { try? Posix.remove(RawPath(indexPath + suffix)) }
        }
        // Snapshots are listed before index files: a backup writes its index first, so a backup
        // finishing while we run cannot make a snapshot look as if its data were missing.
        let snapshotList = try backend.list(.snapshots)
        // 1. Index files, straight from the repository.
        for info in try backend.list(.index) {
            do {
                let plain = try repo.opener.open(try backend.get(info.name), context: EnvelopeContext.index, what: "\(info.name)")
                let file = try IndexFile.decode(plain, what: "\(info.name)")
                try index.addIndex(name: info.name.id, file: file, fileCache: [])
            } catch let e as StoreError {
                report.errors.append("index \(info.name.id.prefix(12)): \(e.message)")
            } catch {
                report.errors.append("index \(info.name.id.prefix(12)): \(error)")
            }
        }
        report.blobs = index.blobCount
        var indexedPacks: [String: Int] = [:]       // pack -> end of its last blob
        for p in try index.packs() { indexedPacks[p.id] = p.end }
        // 2. Packs exist, are big enough; packs nobody indexes are leftovers of interrupted backups.
        let packs = try backend.list(.packs)
        var sizes: [String: Int64] = [:]
        for p in packs { sizes[p.name.id] = p.size }
        report.packs = packs.count
        for (id, end) in indexedPacks.sorted(by: { $0.key < $1.key }) {
            guard let size = sizes[id] else {
                report.errors.append("pack \(id.prefix(12)): missing, but the index lists blobs in it")
                markPackDamaged(id)
                continue
            }
            if size < Int64(end + PackFormat.trailerLength) {
                report.errors.append("pack \(id.prefix(12)): truncated (\(size) bytes, index needs more than \(end))")
                markPackDamaged(id)
            }
        }
        let orphans = packs.filter { indexedPacks[$0.name.id] == nil }
        if !orphans.isEmpty {
            report.warnings.append("\(orphans.count) pack(s) not referenced by any index (left by an interrupted backup; harmless)")
        }
        // 3. Read all data.
        if readData {
            for (i, p) in packs.enumerated() {
                onProgress?("pack \(i + 1)/\(packs.count)")
                verifyPack(p)
            }
        }
        // 4. Snapshots and their trees.
        for info in snapshotList {
            report.snapshots += 1
            let snap: Snapshot
            do {
                let env = try backend.get(info.name)
                let plain = try repo.opener.open(env, context: EnvelopeContext.snapshot, what: "\(info.name)")
                snap = try Snapshot.decode(plain, what: "\(info.name)")
                let g = env[1...4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
                let record = SnapshotRecord(id: info.name.id, snapshot: snap, generation: g,
                                            writer: Envelope.writerID(of: env).map { Hex.encode($0) })
                if let why = repo.rejection(of: record) {
                    report.errors.append("snapshot \(info.name.id.prefix(8)) is rejected: \(why)")
                }
            } catch let e as StoreError {
                report.errors.append("snapshot \(info.name.id.prefix(8)): \(e.message)")
                continue
            }
            guard let root = snap.treeID else {
                report.errors.append("snapshot \(info.name.id.prefix(8)): no root tree")
                continue
            }
            checkTree(root, path: [], snapshot: String(info.name.id.prefix(8)))
        }
        return report
    }

    private func markPackDamaged(_ pack: String) {
        for id in (try? index.blobs(inPack: pack)) ?? [] { damagedBlobs[id] = pack }
    }

    private func verifyPack(_ info: ObjectInfo) {
        let id = info.name.id
        let bytes: [UInt8]
        do { bytes = try repo.backend.get(info.name) } catch {
            report.errors.append("pack \(id.prefix(12)): unreadable: \(error)")
            markPackDamaged(id)
            return
        }
        report.bytesRead += Int64(bytes.count)
        let naming = repo.config.packNaming
        if PackFormat.name(of: bytes, naming: naming) != id {
            let rule = naming == .header ? "of its header" : "of the file"
            report.errors.append("pack \(id.prefix(12)): content does not match its name (SHA-256 \(rule) mismatch): damaged")
        }
        let entries: [PackEntry]
        do { entries = try PackFormat.readHeader(bytes, opener: repo.opener, what: "pack \(id.prefix(12))") } catch let e as StoreError {
            report.errors.append(e.message)
            markPackDamaged(id)
            return
        } catch {
            report.errors.append("pack \(id.prefix(12)): \(error)")
            markPackDamaged(id)
            return
        }
        for e in entries {
            let what = "pack \(id.prefix(12)) blob \(e.id.shortHex)"
            do {
                let plain = try bytes[e.offset..<(e.offset + e.length)].withUnsafeBytes {
                    try BlobCodec.decode($0, type: e.type, id: e.id, rawLength: e.rawLength, opener: repo.opener,
                                         decompressors: repo.decompressors, what: what)
                }
                if repo.writer.blobID(plain) != e.id {
                    report.errors.append("\(what): content does not match its id")
                    damagedBlobs[e.id] = id
                }
            } catch let err as StoreError {
                report.errors.append(err.message)
                damagedBlobs[e.id] = id
            } catch {
                report.errors.append("\(what): \(error)")
                damagedBlobs[e.id] = id
            }
        }
    }

    private func describe(_ path: [[UInt8]]) -> String {
        RawPath(bytes: [0x2f] + path.joined(separator: [0x2f])).description
    }

    private func checkTree(_ id: BlobID, path: [[UInt8]], snapshot: String) {
        guard !checkedTrees.contains(id) else { return }
        checkedTrees.insert(id)
        report.trees += 1
        let tree: Tree
        if let pack = damagedBlobs[id] {
            report.errors.append("snapshot \(snapshot): directory \(describe(path)) is damaged (pack \(pack.prefix(12)))")
            return
        }
        guard let loc = try? index.lookup(id) else {
            report.errors.append("snapshot \(snapshot): directory \(describe(path)): tree \(id.shortHex) missing from the index")
            return
        }
        do {
            tree = try Tree.decode(try repo.loadBlob(id, at: loc), what: "tree \(id.shortHex)")
        } catch let e as StoreError {
            report.errors.append("snapshot \(snapshot): directory \(describe(path)): \(e.message)")
            return
        } catch {
            report.errors.append("snapshot \(snapshot): directory \(describe(path)): \(error)")
            return
        }
        for node in tree.nodes {
            let p = path + [node.name]
            switch node.kind {
            case .directory:
                if let sub = node.subtree { checkTree(sub, path: p, snapshot: snapshot) }
                else { report.errors.append("snapshot \(snapshot): directory \(describe(p)) has no subtree") }
            case .file:
                var reported = false
                for ext in node.content where !reported {
                    guard let (cid, offset) = ext.data else { continue }
                    if let pack = damagedBlobs[cid] {
                        report.errors.append("snapshot \(snapshot): file \(describe(p)) is damaged (pack \(pack.prefix(12)))")
                        reported = true
                    } else if let loc = try? index.lookup(cid) {
                        if offset + ext.length > Int64(loc.rawLength) {
                            report.errors.append("snapshot \(snapshot): file \(describe(p)): extent \(offset)+\(ext.length) beyond the \(loc.rawLength) bytes of chunk \(cid.shortHex)")
                            reported = true
                        }
                    } else {
                        report.errors.append("snapshot \(snapshot): file \(describe(p)): chunk \(cid.shortHex) missing from the index")
                        reported = true
                    }
                }
            default:
                break
            }
        }
    }
}
