import Glibc
import Dispatch

/// One source directory as the backup walk needs it: the entries (bytewise name order,
/// exclusions applied) with their lstat results and extended attributes, and the catalog's
/// file-cache rows for the directory. Reading it needs no key, so it can run ahead of the walk.
struct DirectoryScan {
    struct Entry {
        let name: [UInt8]
        let status: FileStatus
        var xattrs: [Node.Xattr]
    }

    let path: RawPath
    var entries: [Entry] = []
    /// Entries that could not be looked at, and attributes that could not be read (the entry is
    /// kept without them): reported by the walk, which makes the snapshot partial.
    var errors: [PosixError] = []
    /// Set when the directory itself could not be listed (it is saved empty).
    var listingError: PosixError?
    /// nil when not read (no catalog given, or the catalog failed): the walk asks the catalog.
    var fileCache: [[UInt8]: FileCacheEntry]?
    /// Which catalog, and which of its generations, `fileCache` came from.
    var catalog: ObjectIdentifier?
    var catalogGeneration: UInt64 = 0

    static func read(_ path: RawPath, excludes: [String], catalog: Catalog?) -> DirectoryScan {
        var scan = DirectoryScan(path: path)
        if let catalog {
            let generation = catalog.generation
            if let rows = try? catalog.fileCache(directory: path.bytes) {
                scan.fileCache = rows
                scan.catalog = ObjectIdentifier(catalog)
                scan.catalogGeneration = generation
            }
        }
        let listing: [(name: [UInt8], status: Result<FileStatus, PosixError>)]
        do {
            listing = try Posix.readDirectoryStatus(path) { name in
                !excludes.isEmpty && Scanner.excluded(path.appending(name), name, excludes)
            }
        } catch let e as PosixError {
            scan.listingError = e
            return scan
        } catch {
            scan.listingError = PosixError(errno: EIO, operation: "readdir", path: path)
            return scan
        }
        scan.entries.reserveCapacity(listing.count)
        for (name, result) in listing {
            switch result {
            case .failure(let e): scan.errors.append(e)
            case .success(let st):
                if st.kind == .file, let row = scan.fileCache?[name], row.matches(st), let recorded = row.xattrs {
                    // Unchanged since stored (ctime included): so are its attributes.
                    scan.entries.append(Entry(name: name, status: st, xattrs: recorded))
                    continue
                }
                var xattrs: [Node.Xattr] = []
                do {
                    xattrs = try attributes(of: path.appending(name))
                } catch let e as PosixError {
                    scan.errors.append(e)
                } catch {}
                scan.entries.append(Entry(name: name, status: st, xattrs: xattrs))
            }
        }
        return scan
    }

    /// An entry's extended attributes as tree nodes hold them.
    static func attributes(of path: RawPath) throws -> [Node.Xattr] {
        try Posix.extendedAttributes(path).map { Node.Xattr(name: $0.name, value: $0.value) }
    }

    /// The subdirectories the walk descends into, in the order it does.
    func subdirectories(oneFileSystem: Bool, rootDevice: UInt64) -> [RawPath] {
        entries.compactMap { e in
            guard e.status.kind == .directory, !(oneFileSystem && e.status.device != rootDevice) else { return nil }
            return path.appending(e.name)
        }
    }
}

/// Reads the source directories ahead of the backup walk, on its own thread, in the order the
/// walk enters them (depth first, names in bytewise order): the walk's own thread then only
/// builds nodes and trees, and a backup's `lstat`, `llistxattr` and file-cache lookups run on
/// the second core. Started before the repository is unlocked, it also overlaps the passphrase
/// KDF. At most `maxEntries` entries wait at a time (one directory always fits), so memory
/// stays bounded by the window, not by the tree.
///
/// The walk takes each directory with `take(_:)`. If the walk asks for another directory than
/// the next one read (the source changed between the two looks), the prefetcher stops and the
/// walk reads for itself from then on: never wrong, only slower.
public final class SourcePrefetcher: @unchecked Sendable {
    let roots: [RawPath]
    let excludes: [String]
    let oneFileSystem: Bool
    /// The catalog whose file-cache rows are read ahead (nil: none are).
    public let catalog: Catalog?
    let maxEntries: Int

    private let condition = Condition()
    private var queue: [DirectoryScan] = []     // guarded by `condition`
    private var head = 0
    private var queuedEntries = 0
    private var finished = false
    private var cancelled = false
    private var started = false

    /// `paths`: the backup's selected paths; `catalog`: the repository's catalog, when open.
    public init(paths: [RawPath], excludes: [String], oneFileSystem: Bool, catalog: Catalog?, maxEntries: Int = 32_768) {
        roots = PathTrie(paths: paths.map { $0.normalizedAbsolute() }).selectedPaths()
        self.excludes = excludes
        self.oneFileSystem = oneFileSystem
        self.catalog = catalog
        self.maxEntries = max(1, maxEntries)
    }

    /// Starts reading on a background thread (once).
    public func start() {
        let first = condition.withLock { () -> Bool in
            defer { started = true }
            return !started
        }
        guard first else { return }
        DispatchQueue.global(qos: .userInitiated).async { [self] in
            for root in roots {
                guard let st = try? Posix.lstat(root), st.kind == .directory else { continue }
                if !visit(root, rootDevice: st.device) { break }
            }
            condition.withLock { finished = true }
            condition.broadcast()
        }
    }

    /// Reads `directory` and everything below it; false once cancelled.
    private func visit(_ directory: RawPath, rootDevice: UInt64) -> Bool {
        let scan = DirectoryScan.read(directory, excludes: excludes, catalog: catalog)
        let subdirectories = scan.subdirectories(oneFileSystem: oneFileSystem, rootDevice: rootDevice)
        guard enqueue(scan) else { return false }
        for d in subdirectories where !visit(d, rootDevice: rootDevice) { return false }
        return true
    }

    private func enqueue(_ scan: DirectoryScan) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while !cancelled && head < queue.count && queuedEntries + scan.entries.count > maxEntries { condition.wait() }
        if cancelled { return false }
        if head > 0 && head * 2 >= queue.count {
            queue.removeFirst(head)
            head = 0
        }
        queue.append(scan)
        queuedEntries += scan.entries.count
        condition.broadcast()
        return true
    }

    /// The scan of `directory` if it is the next one read ahead (waiting for it if need be);
    /// nil when it is not, or when the prefetcher has stopped: the caller reads for itself.
    func take(_ directory: RawPath) -> DirectoryScan? {
        condition.lock()
        defer { condition.unlock() }
        while !cancelled && head == queue.count && !finished { condition.wait() }
        guard !cancelled, head < queue.count, queue[head].path == directory else {
            cancelLocked()
            return nil
        }
        let scan = queue[head]
        queue[head] = DirectoryScan(path: scan.path)
        head += 1
        queuedEntries -= scan.entries.count
        condition.broadcast()
        return scan
    }

    /// Stops reading ahead and drops what was read.
    public func cancel() {
        condition.withLock { cancelLocked() }
    }

    private func cancelLocked() {
        cancelled = true
        queue.removeAll()
        head = 0
        queuedEntries = 0
        condition.broadcast()
    }
}

extension PathTrie {
    /// The selected paths in the order the backup walk reaches them (children bytewise).
    func selectedPaths(_ prefix: RawPath = RawPath("/")) -> [RawPath] {
        if selected { return [prefix] }
        return children.sorted { $0.key.lexicographicallyPrecedes($1.key) }.flatMap { $0.value.selectedPaths(prefix.appending($0.key)) }
    }
}
