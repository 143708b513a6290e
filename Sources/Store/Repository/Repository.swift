import Crypto
import Glibc

/// An open, unlocked repository: backend + keys + local catalog.
public final class Repository: @unchecked Sendable {
    public let backend: Backend
    public let config: RepositoryConfig
    /// The keys that read (nil when opened with a write-only key).
    public let readKeys: RepositoryKeys?
    /// The keys this client writes with.
    public let writer: WriterKeys
    public let opener: Opener
    public let catalog: Catalog
    /// Name (64 hex digits) of the key slot that unlocked the repository ("" when opened without one).
    public internal(set) var openedSlot: String = ""
    /// Key rotations, oldest first (readers only): which snapshots and writers they accept.
    public internal(set) var rotations: [Rotation] = []
    /// Set when `keys/` holds a generation record newer than the key that opened the repository:
    /// the key is outdated and must not write (readers would reject what it writes).
    public internal(set) var newerGeneration: UInt32?
    let decompressors = ObjectPool { ZstdDecompressor() }
    let blobCache: LRUCache<BlobID, [UInt8]>

    init(backend: Backend, config: RepositoryConfig, keys: RepositoryKeys, catalog: Catalog, cacheBytes: Int) {
        self.backend = backend
        self.config = config
        self.readKeys = keys
        self.writer = keys.writer
        self.opener = Opener(keys: keys)
        self.catalog = catalog
        self.blobCache = LRUCache(limit: cacheBytes)
    }

    init(backend: Backend, config: RepositoryConfig, writeOnly writer: WriterKeys, catalog: Catalog) {
        self.backend = backend
        self.config = config
        self.readKeys = nil
        self.writer = writer
        self.opener = Opener(writeOnly: writer)
        self.catalog = catalog
        self.blobCache = LRUCache(limit: 1 << 20)
    }

    public var location: String { backend.location }

    /// True when opened with a write-only key: it can back up, nothing else.
    public var isWriteOnly: Bool { readKeys == nil }

    /// The read-capable keys; throws `.writeOnly` for a write-only key.
    public var keys: RepositoryKeys {
        get throws {
            guard let k = readKeys else {
                throw StoreError(.writeOnly, "\(location): opened with a write-only key, which cannot decrypt anything")
            }
            return k
        }
    }

    // MARK: - Creating and opening

    /// Creates a new repository at `backend` with one passphrase slot. Returns its config.
    public static func create(backend: LocalBackend, passphrase: [UInt8], kdf: KDFParameters,
                              label: String? = nil) throws -> RepositoryConfig {
        if (try? backend.stat(.config)) != nil {
            throw StoreError(.repositoryExists, "\(backend.location): a repository already exists there")
        }
        try backend.create()
        let config = RepositoryConfig.new()
        let master = SecretBytes.random(count: RepositoryKeys.masterLength)
        let slot = try KeyFile.passphrase(passphrase, master: master, repositoryID: config.idBytes, kdf: kdf, label: label)
        try addKeySlot(slot, to: backend)
        do { try backend.put(.config, try config.encoded()) } catch let e as BackendError {
            throw StoreError(.io, e.description)
        }
        return config
    }

    @discardableResult
    static func addKeySlot(_ slot: KeyFile, to backend: AppendOnlyBackend) throws -> String {
        let bytes = try slot.encoded()
        let id = Hex.encode(SHA256Digest.of(bytes))
        do { try backend.put(try ObjectName(.keys, id), bytes) } catch let e as BackendError {
            throw StoreError(.io, e.description)
        }
        return id
    }

    public static func readConfig(_ backend: ReadableBackend) throws -> RepositoryConfig {
        let bytes: [UInt8]
        do { bytes = try backend.get(.config) } catch BackendError.notFound {
            throw StoreError(.repositoryNotFound, "\(backend.location): no repository there (no config file); create one with 'coffer init'")
        } catch let e as BackendError {
            throw StoreError(.io, e.description)
        }
        return try RepositoryConfig.decode(bytes, location: backend.location)
    }

    /// Opens a repository: reads the config, finds a key slot the passphrase unlocks,
    /// opens the local catalog under `cacheDirectory/<repository id>/` and syncs it.
    /// `catalog`: one already opened with `openReaderCatalog` (for this repository), else opened here.
    public static func open(backend: Backend, passphrase: [UInt8], cacheDirectory: RawPath,
                            cacheBytes: Int = 32 << 20, catalog: Catalog? = nil) throws -> Repository {
        let config = try readConfig(backend)
        let (unlocked, opened) = try unlockWithPassphrase(backend: backend, config: config, passphrase: passphrase)
        return try finishOpening(backend: backend, config: config, unlocked: unlocked, opened: opened,
                                 cacheDirectory: cacheDirectory, cacheBytes: cacheBytes, catalog: catalog)
    }

    /// Opens a repository through its `openpgp` key slots: gpg-agent decrypts (no passphrase asked
    /// here; COFFER_GPG_PASSPHRASE gives one to a loopback pinentry). Fails with `.wrongPassword`
    /// when no OpenPGP slot opens with the secret keys available.
    public static func openWithOpenPGP(backend: Backend, cacheDirectory: RawPath,
                                       cacheBytes: Int = 32 << 20, catalog: Catalog? = nil) throws -> Repository {
        let config = try readConfig(backend)
        let slots = try keySlots(backend)
        var unlocked: UnlockedKeys?
        var opened = ""
        var failures: [String] = []
        let damaged = slots.filter { $0.slot == nil }.map { "keys/\($0.name)" }
        var count = 0
        for entry in slotsNewestFirst(slots) {
            guard let slot = entry.slot, slot.repository == config.id, slot.kind == "openpgp" else { continue }
            count += 1
            do {
                if let m = try slot.unlockOpenPGP() {
                    do {
                        unlocked = try UnlockedKeys.walk(master: m, generation: slot.keyGeneration, repositoryID: config.idBytes,
                                                         slots: slots, location: backend.location)
                        opened = entry.name
                        break
                    } catch let e as StoreError {
                        failures.append("slot \(entry.shortID): \(e.message)")
                    }
                }
            } catch let e as GPGError {
                let hint = !e.isNoSecretKey && getenv("COFFER_GPG_PASSPHRASE") == nil
                    ? " — if the key has a passphrase, run on a terminal with a pinentry or set COFFER_GPG_PASSPHRASE" : ""
                failures.append("slot \(entry.shortID): \(e.message)\(hint)")
            }
        }
        guard let unlocked else {
            guard count > 0 else {
                throw StoreError(.wrongPassword, "\(backend.location): no OpenPGP key slot (add one with 'coffer key add --gpg-recipient ID')"
                                 + (damaged.isEmpty ? "" : "; unreadable slots: \(damaged.joined(separator: ", "))"))
            }
            throw StoreError(.wrongPassword, "\(backend.location): no OpenPGP key slot opens with the secret keys gpg-agent has (\(failures.joined(separator: "; ")))")
        }
        return try finishOpening(backend: backend, config: config, unlocked: unlocked, opened: opened,
                                 cacheDirectory: cacheDirectory, cacheBytes: cacheBytes, catalog: catalog)
    }

    /// Slots of the newest generation first, so that after a rotation the current slot opens.
    static func slotsNewestFirst(_ slots: [KeySlotEntry]) -> [KeySlotEntry] {
        slots.enumerated().sorted { a, b in
            let (ga, gb) = (a.element.slot?.keyGeneration ?? 0, b.element.slot?.keyGeneration ?? 0)
            return ga != gb ? ga > gb : a.offset < b.offset
        }.map(\.element)
    }

    static func unlockWithPassphrase(backend: Backend, config: RepositoryConfig,
                                     passphrase: [UInt8]) throws -> (UnlockedKeys, String) {
        let slots = try keySlots(backend)
        // A damaged slot must not lock everyone out: skip it, and say so only if nothing opens.
        let damaged = slots.filter { $0.slot == nil }.map { "keys/\($0.name)" }
        var incomplete: [String] = []
        for entry in slotsNewestFirst(slots) {
            guard let slot = entry.slot, slot.repository == config.id, let m = try slot.unlock(passphrase) else { continue }
            do {
                let u = try UnlockedKeys.walk(master: m, generation: slot.keyGeneration, repositoryID: config.idBytes,
                                              slots: slots, location: backend.location)
                return (u, entry.name)
            } catch let e as StoreError where e.code == .corrupt {
                incomplete.append("slot \(entry.shortID): \(e.message)")
            }
        }
        if !incomplete.isEmpty {
            throw StoreError(.corrupt, incomplete.joined(separator: "; "))
        }
        if !damaged.isEmpty {
            throw StoreError(.wrongPassword, "\(backend.location): wrong passphrase (no key slot opens with it; unreadable slots: \(damaged.joined(separator: ", ")))")
        }
        if !slots.contains(where: { $0.isReadCapable(for: config.id) }) {
            throw StoreError(.wrongPassword, "\(backend.location): the repository has no key slot a passphrase could open (keys/ holds \(slots.count) file\(slots.count == 1 ? "" : "s")); with the recovery sheet: coffer key import-recovery SHEET")
        }
        throw StoreError(.wrongPassword, "\(backend.location): wrong passphrase (no key slot opens with it)")
    }

    static func finishOpening(backend: Backend, config: RepositoryConfig, unlocked: UnlockedKeys, opened: String,
                              cacheDirectory: RawPath, cacheBytes: Int, catalog: Catalog? = nil) throws -> Repository {
        let catalog = try catalog ?? openCatalog(cacheDirectory: cacheDirectory, config: config, file: "catalog.sqlite")
        let repo = Repository(backend: backend, config: config, keys: unlocked.keys, catalog: catalog, cacheBytes: cacheBytes)
        repo.openedSlot = opened
        repo.rotations = unlocked.rotations
        repo.newerGeneration = unlocked.newerGeneration
        // "Last used" for `key list` (local to this machine); never worth failing a command over.
        try? catalog.recordKeyUse(slot: opened, time: Timestamp.now().rfc3339)
        try repo.syncCatalog()
        return repo
    }

    /// The catalog a read-capable key uses for the repository at `backend`, opened before any key
    /// is unlocked (it needs only the config): a backup reads its file-cache rows while the
    /// passphrase KDF runs, then passes it to `open`.
    public static func openReaderCatalog(backend: ReadableBackend, cacheDirectory: RawPath) throws -> Catalog {
        try openCatalog(cacheDirectory: cacheDirectory, config: try readConfig(backend), file: "catalog.sqlite")
    }

    /// Opens (creating it 0600 if needed) the catalog `file` under `cacheDirectory/<repository id>/`.
    /// Refuses a catalog that group or others can read: it names every file and chunk backed up.
    static func openCatalog(cacheDirectory: RawPath, config: RepositoryConfig, file: String) throws -> Catalog {
        let dir = cacheDirectory.appending(config.id)
        do {
            try Posix.makeDirectories(dir, permissions: 0o700)
        } catch let e as PosixError {
            throw StoreError(.io, "cannot create cache directory: \(e)")
        }
        let path = dir.appending(file)
        if let st = try? Posix.lstat(path), st.permissions & 0o077 != 0 {
            throw StoreError(.invalidArgument, "catalog \(path) is readable or writable by group or others (mode \(String(st.permissions & 0o777, radix: 8))): run 'chmod 600 \(path)'")
        }
        do {
            return try Catalog(path: path.description, repositoryID: config.id)
        } catch let e as SQLiteError {
            throw StoreError(.io, "catalog \(path): \(e)")
        }
    }

    /// Warnings from the last catalog sync (damaged objects that were skipped).
    public private(set) var warnings: [String] = []

    /// Picks up index files and snapshots written since the catalog last looked.
    public func syncCatalog() throws {
        do {
            warnings = try catalog.sync(backend: backend, opener: opener, snapshots: !isWriteOnly).warnings
            if !rotations.isEmpty {
                warnings += try rejectedSnapshots().map { "ignoring snapshot \($0.0.shortID): \($0.1)" }
            }
        } catch let e as BackendError {
            throw StoreError(.io, e.description)
        } catch let e as SQLiteError {
            throw StoreError(.io, "catalog \(catalog.path): \(e)")
        }
    }

    /// Drops the catalog's content and re-reads everything from the repository.
    public func rebuildCatalog() throws {
        try catalog.clear()
        try syncCatalog()
    }

    // MARK: - Reading

    /// True when a blob's plaintext is in the decrypted-blob cache.
    public func isCached(_ id: BlobID) -> Bool { blobCache.contains(id) }

    public func loadBlob(_ id: BlobID, type: BlobType) throws -> [UInt8] {
        if let b = blobCache.get(id) { return b }
        guard let loc = try catalog.lookup(id) else {
            throw StoreError(.missing, "blob \(id.shortHex) is not in the index")
        }
        let b = try loadBlob(id, at: loc)
        blobCache.put(id, b, cost: b.count + 64)
        return b
    }

    func loadBlob(_ id: BlobID, at loc: BlobLocation) throws -> [UInt8] {
        let name = try ObjectName(.packs, loc.pack)
        let what = "pack \(loc.pack.prefix(12)) blob \(id.shortHex)"
        let env: [UInt8]
        do { env = try backend.get(name, range: Int64(loc.offset)..<Int64(loc.offset + loc.length)) } catch let e as BackendError {
            throw StoreError(.missing, "\(what): \(e)")
        }
        let plain = try env.withUnsafeBytes {
            try BlobCodec.decode($0, type: loc.type, id: id, rawLength: loc.rawLength, opener: opener,
                                 decompressors: decompressors, what: what)
        }
        return plain
    }

    public func loadTree(_ id: BlobID) throws -> Tree {
        try Tree.decode(try loadBlob(id, type: .tree), what: "tree \(id.shortHex)")
    }

    // MARK: - Snapshots

    /// Accepted snapshots, oldest first: those a key rotation rejects (`rejection(of:)`) are left
    /// out (and reported in `warnings` on open).
    public func snapshots(host: String? = nil) throws -> [SnapshotRecord] {
        var all = try catalog.snapshots()
        if !rotations.isEmpty { all = all.filter { rejection(of: $0) == nil } }
        guard let host else { return all }
        return all.filter { $0.snapshot.host == host }
    }

    /// Resolves "latest" (newest, optionally for one host) or a unique id prefix.
    public func findSnapshot(_ spec: String, host: String? = nil) throws -> SnapshotRecord {
        let list = try snapshots(host: host)
        if spec == "latest" {
            guard let s = list.last else {
                throw StoreError(.snapshotNotFound, host.map { "no snapshot for host \($0)" } ?? "the repository has no snapshots")
            }
            return s
        }
        let matches = list.filter { $0.id.hasPrefix(spec.lowercased()) }
        guard !spec.isEmpty, !matches.isEmpty else { throw StoreError(.snapshotNotFound, "no snapshot matches \"\(spec)\"") }
        guard matches.count == 1 else {
            throw StoreError(.ambiguous, "\"\(spec)\" matches \(matches.count) snapshots: \(matches.map(\.shortID).joined(separator: ", "))")
        }
        return matches[0]
    }

    /// Encrypts and stores a snapshot (call only after its packs and index are durable).
    public func saveSnapshot(_ snapshot: Snapshot, sealer: Sealer) throws -> String {
        let plain = try snapshot.encoded()
        let env = try sealer.seal(plain, context: EnvelopeContext.snapshot)
        let id = Hex.encode(SHA256Digest.of(env))
        do { try backend.put(try ObjectName(.snapshots, id), env) } catch let e as BackendError {
            throw StoreError(.io, e.description)
        }
        // A write-only client keeps no copy of what it cannot read back.
        if !isWriteOnly { try catalog.addSnapshot(id: id, json: plain, envelope: env) }
        return id
    }

    /// Encrypts and stores an index file; records it in the catalog together with file-cache rows.
    func saveIndex(_ file: IndexFile, sealer: Sealer,
                   fileCache: [(dir: [UInt8], name: [UInt8], entry: FileCacheEntry)]) throws -> Int {
        try saveIndex(fileCache: fileCache, sealer: sealer, packs: { file }, beforeStoring: {})
    }

    /// Records file-cache rows in the catalog together with the index file `packs` returns
    /// (nil: no new packs), which is encrypted and stored once `beforeStoring` returned (the
    /// packs it names are durable by then); the catalog commits after that (`Catalog.addIndex`).
    /// The catalog inserts overlap whatever `packs` and `beforeStoring` wait for. Returns the
    /// index file's size (0 without one).
    func saveIndex(fileCache: [(dir: [UInt8], name: [UInt8], entry: FileCacheEntry)], sealer: Sealer,
                   packs: () throws -> IndexFile?, beforeStoring: () throws -> Void) throws -> Int {
        var stored: (name: ObjectName, envelope: [UInt8])?
        try catalog.addIndex(fileCache: fileCache, index: {
            guard let file = try packs() else { return nil }
            let env = try sealer.seal(file.encoded(), context: EnvelopeContext.index)
            let id = Hex.encode(SHA256Digest.of(env))
            stored = (try ObjectName(.index, id), env)
            return (id, file)
        }, beforeCommit: {
            try beforeStoring()
            guard let (name, env) = stored else { return }
            do { try backend.put(name, env) } catch BackendError.alreadyExists {
            } catch let e as BackendError {
                throw StoreError(.io, e.description)
            }
        })
        return stored?.envelope.count ?? 0
    }
}
