import Glibc

/// A repository in a local directory:
/// `config`, `keys/<id>`, `snapshots/<id>`, `index/<id>`, `locks/<id>`, `data/<id[0..2]>/<id>`,
/// and `tmp/` for staging. Writes go to `tmp/`, are fsync'd, then hard-linked into place
/// (link(2) fails on an existing name, so nothing is ever overwritten) and the directory is fsync'd.
public final class LocalBackend: Backend, @unchecked Sendable {
    public let root: RawPath
    public var location: String { root.description }
    public var stagingDirectory: RawPath { root.appending("tmp") }

    /// Open packs for ranged reads (restore and mount read many small ranges of few packs).
    /// A reader holds its own reference, so eviction never closes a descriptor in use.
    private let openPacks = LRUCache<String, FileHandle>(limit: 64)

    public init(path: RawPath) {
        self.root = path.normalizedAbsolute()
    }

    /// Creates the directory skeleton (the directory itself may exist but must be empty).
    public func create() throws {
        do {
            if (try? Posix.lstat(root)) != nil {
                let entries = try Posix.readDirectory(root)
                if !entries.isEmpty {
                    throw StoreError(.repositoryExists, "\(root): directory is not empty; refusing to create a repository there")
                }
            } else {
                try Posix.makeDirectory(root, permissions: 0o700)
            }
            for sub in ["keys", "snapshots", "index", "locks", "data", "tmp"] {
                try Posix.makeDirectory(root.appending(sub), permissions: 0o700)
            }
            for i in 0..<256 {
                try Posix.makeDirectory(root.appending("data").appending(Hex.encode([UInt8(i)])), permissions: 0o700)
            }
            try Posix.fsyncDirectory(root)
        } catch let e as PosixError {
            throw StoreError(.io, e.description)
        }
    }

    func path(_ name: ObjectName) -> RawPath {
        switch name.kind {
        case .config: return root.appending("config")
        case .packs: return root.appending("data").appending(String(name.id.prefix(2))).appending(name.id)
        default: return root.appending(name.kind.rawValue).appending(name.id)
        }
    }

    public func get(_ name: ObjectName, range: Range<Int64>?) throws -> [UInt8] {
        let cacheable = name.kind == .packs && range != nil
        var fh: FileHandle! = cacheable ? openPacks.get(name.id) : nil
        if fh == nil {
            do { fh = try FileHandle.openForReading(path(name)) } catch let e as PosixError {
                if e.errno == ENOENT { throw BackendError.notFound(name, location: path(name).description) }
                throw BackendError.io(e.description)
            }
            if cacheable { openPacks.put(name.id, fh, cost: 1) }
        }
        do {
            if let r = range {
                return try fh.readExactly(count: Int(r.upperBound - r.lowerBound), at: r.lowerBound)
            }
            let size = try fh.status().size
            return try fh.readExactly(count: Int(size), at: 0)
        } catch let e as PosixError {
            throw BackendError.io(e.description)
        }
    }

    public func stat(_ name: ObjectName) throws -> ObjectInfo {
        do {
            let st = try Posix.lstat(path(name))
            guard st.kind == .file else { throw BackendError.notFound(name, location: path(name).description) }
            return ObjectInfo(name: name, size: st.size)
        } catch let e as PosixError {
            if e.errno == ENOENT || e.errno == ENOTDIR { throw BackendError.notFound(name, location: path(name).description) }
            throw BackendError.io(e.description)
        }
    }

    public func list(_ kind: ObjectKind) throws -> [ObjectInfo] {
        if kind == .config {
            return (try? stat(.config)).map { [$0] } ?? []
        }
        var dirs: [RawPath] = []
        if kind == .packs {
            let base = root.appending("data")
            dirs = try readDir(base).filter { $0.count == 2 }.map { base.appending($0) }
        } else {
            dirs = [root.appending(kind.rawValue)]
        }
        var out: [ObjectInfo] = []
        for d in dirs {
            for entry in try readDir(d) {
                guard let id = String(validating: entry, as: UTF8.self), ObjectName.isValid(kind, id) else { continue }
                // A pack is only where get() looks for it: data/<first two hex digits>/<id>.
                if kind == .packs && id.prefix(2) != String(decoding: d.lastComponent, as: UTF8.self) { continue }
                let name = try ObjectName(kind, id)
                guard let st = try? Posix.lstat(d.appending(entry)), st.kind == .file else { continue }
                out.append(ObjectInfo(name: name, size: st.size))
            }
        }
        return out.sorted { $0.name.id < $1.name.id }
    }

    private func readDir(_ p: RawPath) throws -> [[UInt8]] {
        do { return try Posix.readDirectory(p) } catch let e as PosixError {
            if e.errno == ENOENT { return [] }
            throw BackendError.io(e.description)
        }
    }

    public func put(_ name: ObjectName, _ bytes: [UInt8]) throws {
        let tmp = stagingDirectory.appending(LocalBackend.temporaryName())
        do {
            let fh = try FileHandle.create(tmp, permissions: 0o600)
            do {
                try bytes.withUnsafeBytes { try fh.write($0) }
                try fh.sync()
                fh.close()
            } catch {
                fh.close()
                try? Posix.remove(tmp)
                throw error
            }
        } catch let e as PosixError {
            throw BackendError.io(e.description)
        }
        try putFile(name, from: tmp)
    }

    public func putFile(_ name: ObjectName, from staged: RawPath) throws {
        let dest = path(name)
        defer { try? Posix.remove(staged) }
        do {
            try Posix.makeHardLink(dest, existing: staged)
            try Posix.fsyncDirectory(dest.parent)
        } catch let e as PosixError {
            if e.errno == EEXIST { throw BackendError.alreadyExists(name) }
            throw BackendError.io(e.description)
        }
    }

    public func delete(_ name: ObjectName) throws {
        if name.kind == .packs { openPacks.remove(name.id) }
        do {
            try Posix.remove(path(name))
            try Posix.fsyncDirectory(path(name).parent)
        } catch let e as PosixError {
            if e.errno == ENOENT { return }
            throw BackendError.io(e.description)
        }
    }

    /// Removes files a killed writer left in `tmp/`: named by a process that no longer exists
    /// here and not modified for `minimumAge` seconds (so a writer on another host sharing the
    /// repository, whose pid means nothing here, is never disturbed). Returns how many.
    @discardableResult
    public func removeAbandonedStagingFiles(minimumAge: Int64 = 3600) -> Int {
        guard let names = try? Posix.readDirectory(stagingDirectory) else { return 0 }
        let now = Timestamp.now().seconds
        var removed = 0
        for name in names {
            guard let s = String(validating: name, as: UTF8.self), s.hasPrefix("tmp-"),
                  let pid = Int32(s.dropFirst(4).prefix { $0 != "-" }), pid > 0 else { continue }
            let p = stagingDirectory.appending(name)
            guard let st = try? Posix.lstat(p), st.kind == .file, now - st.mtime.seconds >= minimumAge else { continue }
            if kill(pid, 0) == 0 || errno != ESRCH { continue }   // still running (or not ours to judge)
            if (try? Posix.remove(p)) != nil { removed += 1 }
        }
        return removed
    }

    /// A unique name for a file in `tmp/` (never a valid object id, so `list` skips it).
    public static func temporaryName() -> String {
        "tmp-\(getpid())-\(Hex.encode(SecureRandomBytes.get(8)))"
    }
}
