import Glibc
import XCTest
@testable import FS
@testable import Store

/// MountFS without the kernel: both ways a mount reads a file (through an open handle, as on
/// kernels that send open/release, and by node id, as when opens are declined) and the
/// prefetch of the next files of a directory.
final class MountFSReadTests: XCTestCase {
    private var dir: StoreTestDirectory!
    private let passphrase = Array("mountfs test".utf8)

    override func setUp() { dir = StoreTestDirectory("coffer-mountfs") }
    override func tearDown() { dir.remove() }

    private let contents: [(String, [UInt8])] = [
        ("a-small", storeTestBytes(count: 10_000, seed: 1)),
        ("b-multi-chunk", storeTestBytes(count: 1_500_000, seed: 2)),   // usually several chunks
        ("c-tiny", Array("hello".utf8)),
        ("d-next", storeTestBytes(count: 20_000, seed: 3)),
        ("e-empty", []),
        ("g-big", storeTestBytes(count: 9 << 20, seed: 5)),   // over the 8 MiB maximum: always 2+ chunks
    ]

    private let sparseSize: Int64 = 3 << 20 + 100
    private let sparseDataOffset: Int64 = 1_600_000
    private let sparseData = storeTestBytes(count: 8192, seed: 4)

    /// Backs up a directory of files and returns the mounted view plus each file's node id.
    private func mounted(through wrap: (LocalBackend) -> Backend = { $0 }) throws -> (MountFS, [String: UInt64]) {
        let src = dir.appending("src")
        XCTAssertEqual(src.withCString { mkdir($0, 0o755) }, 0)
        for (name, bytes) in contents { storeTestWriteFile(src.appending(name), bytes) }
        // A sparse file: a hole, data, a hole to the end (both holes longer than 1 MiB).
        let sparse = try Store.FileHandle.create(src.appending("f-sparse"), permissions: 0o644)
        try sparseData.withUnsafeBytes { try sparse.pwrite($0, at: sparseDataOffset) }
        try sparse.truncate(sparseSize)
        sparse.close()
        let (fs, node) = try backUpAndMount(src, through: wrap)
        var ids: [String: UInt64] = [:]
        for name in contents.map(\.0) + ["f-sparse"] { ids[name] = try fs.lookup(parent: node, name: Array(name.utf8)).id }
        return (fs, ids)
    }

    /// Backs up `src` into a new repository (read through `wrap`) and returns the mounted view
    /// plus the node id of `src` in it.
    private func backUpAndMount(_ src: RawPath, through wrap: (LocalBackend) -> Backend = { $0 }) throws -> (MountFS, UInt64) {
        let backend = LocalBackend(path: dir.appending("repo"))
        _ = try Repository.create(backend: backend, passphrase: passphrase, kdf: .scrypt(memoryBytes: 1 << 20))
        let repo = try Repository.open(backend: wrap(backend), passphrase: passphrase, cacheDirectory: dir.appending("cache"))
        let result = try Archiver(repository: repo, options: BackupOptions(paths: [src], host: "h")).run()
        let fs = try MountFS(repository: repo, log: { _ in })
        var node: UInt64 = try fs.lookup(parent: 1, name: Array("ids".utf8)).id
        node = try fs.lookup(parent: node, name: Array(result.snapshotID.prefix(8).utf8)).id
        for component in src.description.split(separator: "/") {
            node = try fs.lookup(parent: node, name: Array(component.utf8)).id
        }
        return (fs, node)
    }

    /// Makes `src` with subdirectories `dirs` and files `files` (paths relative to `src`).
    private func makeTree(dirs: [String], files: [(String, [UInt8])]) -> RawPath {
        let src = dir.appending("src")
        for d in [""] + dirs.map({ "/" + $0 }) {
            XCTAssertEqual(src.description.appending(d).withCString { mkdir($0, 0o755) }, 0)
        }
        for (f, bytes) in files { storeTestWriteFile(RawPath(src.description + "/" + f), bytes) }
        return src
    }

    /// The node id and tree node at `path` (relative, "/"-separated) below node `root`.
    private func entry(_ fs: MountFS, _ root: UInt64, _ path: String) throws -> (id: UInt64, node: Node) {
        var id = root
        for c in path.split(separator: "/") { id = try fs.lookup(parent: id, name: Array(c.utf8)).id }
        guard case .node(_, let n) = try fs.entry(id).kind else { throw FSError(ENOENT) }
        return (id, n)
    }

    /// Waits (polling, up to 10 s) until `done`, then asserts it.
    private func poll(_ what: String, _ done: () throws -> Bool) rethrows {
        let deadline = Date().addingTimeInterval(10)
        while try !done() && Date() < deadline { usleep(1000) }   // polling interval; the deadline bounds it
        XCTAssertTrue(try done(), what)
    }

    private func readAll(_ read: (Int64, Int) throws(FSError) -> FSReadData, size: Int) throws -> [UInt8] {
        var out: [UInt8] = []
        var offset: Int64 = 0
        while true {
            let piece = try read(offset, 131_072)
            if piece.isEmpty { return out }
            out += piece.bytes
            offset += Int64(piece.count)
            XCTAssertLessThanOrEqual(out.count, size)
        }
    }

    func testReadsByHandleAndByNodeGiveTheFileContent() throws {
        let (fs, ids) = try mounted()
        defer { fs.shutdown() }
        for (name, bytes) in contents {
            let id = ids[name]!
            let handle = try fs.open(id, flags: O_RDONLY)
            XCTAssertEqual(try readAll({ (o, n) throws(FSError) in try fs.read(handle, offset: o, count: n) }, size: bytes.count),
                           bytes, "\(name) through a handle")
            XCTAssertEqual(try readAll({ (o, n) throws(FSError) in try fs.read(inode: id, offset: o, count: n) }, size: bytes.count),
                           bytes, "\(name) by node id")
            if bytes.count > 5000 {
                // A read across the middle, and one that ends past the end of the file.
                XCTAssertEqual(try fs.read(inode: id, offset: 1234, count: 3000).bytes, Array(bytes[1234..<4234]))
                XCTAssertEqual(try fs.read(handle, offset: Int64(bytes.count - 10), count: 4096).bytes, Array(bytes.suffix(10)))
            }
            fs.release(handle)
            XCTAssertThrowsError(try fs.read(handle, offset: 0, count: 1)) { XCTAssertEqual(($0 as? FSError)?.errno, EBADF) }
        }
    }

    func testOneReadAcrossChunksAndHolesIsGivenInPiecesNotJoined() throws {
        let (fs, ids) = try mounted()
        defer { fs.shutdown() }
        let big = contents.first { $0.0 == "g-big" }!.1
        let whole = try fs.read(inode: ids["g-big"]!, offset: 0, count: big.count)
        XCTAssertEqual(whole.bytes, big)
        guard case .node(_, let node) = try fs.entry(ids["g-big"]!).kind else { return XCTFail("g-big is not a node") }
        XCTAssertGreaterThan(node.content.count, 1)
        XCTAssertEqual(whole.segments.count, node.content.count, "a read spanning chunks is one slice per chunk")

        var expected = [UInt8](repeating: 0, count: Int(sparseSize))
        expected.replaceSubrange(Int(sparseDataOffset)..<Int(sparseDataOffset) + sparseData.count, with: sparseData)
        let sparse = try fs.read(inode: ids["f-sparse"]!, offset: 0, count: Int(sparseSize) + 4096)
        XCTAssertEqual(sparse.count, Int(sparseSize))
        XCTAssertEqual(sparse.bytes, expected)
        XCTAssertGreaterThanOrEqual(sparse.segments.count, 5, "holes over 1 MiB are several slices of the zero buffer")
        // A read inside one hole, and one that starts in a hole and ends in data.
        XCTAssertEqual(try fs.read(inode: ids["f-sparse"]!, offset: 10, count: 100).bytes, [UInt8](repeating: 0, count: 100))
        XCTAssertEqual(try fs.read(inode: ids["f-sparse"]!, offset: sparseDataOffset - 50, count: 100).bytes,
                       Array(expected[Int(sparseDataOffset) - 50..<Int(sparseDataOffset) + 50]))
    }

    func testOpeningForWritingIsRefusedAndDirectoriesAreNotFiles() throws {
        let (fs, ids) = try mounted()
        defer { fs.shutdown() }
        for flags in [O_WRONLY, O_RDWR, O_RDONLY | O_TRUNC, O_RDONLY | O_APPEND] {
            XCTAssertThrowsError(try fs.open(ids["a-small"]!, flags: flags)) { XCTAssertEqual(($0 as? FSError)?.errno, EROFS) }
        }
        XCTAssertThrowsError(try fs.read(inode: 1, offset: 0, count: 1)) { XCTAssertEqual(($0 as? FSError)?.errno, EISDIR) }
        XCTAssertThrowsError(try fs.read(inode: 999_999, offset: 0, count: 1)) { XCTAssertEqual(($0 as? FSError)?.errno, ESTALE) }
    }

    func testReadingOneFilePrefetchesTheFollowingFiles() throws {
        let (fs, ids) = try mounted()
        defer { fs.shutdown() }
        func firstChunk(_ name: String) throws -> BlobID {
            guard case .node(_, let n) = try fs.entry(ids[name]!).kind, let first = n.content.first?.data else {
                XCTFail("\(name) has no data")
                throw FSError(EINVAL)
            }
            return first.id
        }
        let following = try ["b-multi-chunk", "c-tiny", "d-next"].map(firstChunk)
        XCTAssertFalse(following.contains { fs.repo.isCached($0) }, "nothing is loaded before a read")
        _ = try fs.read(inode: ids["a-small"]!, offset: 0, count: 4096)
        let deadline = Date().addingTimeInterval(10)
        while following.contains(where: { !fs.repo.isCached($0) }) && Date() < deadline { usleep(2000) }
        XCTAssertTrue(following.allSatisfy { fs.repo.isCached($0) }, "the next files' first chunks were not prefetched")
    }

    /// A reader that needs a chunk the sibling prefetch also wants loads it once: the prefetch
    /// thread leaves it to the reader and pushes the reader's result. (They used to decrypt and
    /// decompress it both: 27 % of the bytes read from packs during a tar of small files.)
    func testAReaderAndThePrefetchLoadAChunkOnce() throws {
        var counting: CountingBackend!
        let (fs, ids) = try mounted(through: { counting = CountingBackend($0); return counting })
        defer { fs.shutdown() }
        guard case .node(_, let node) = try fs.entry(ids["d-next"]!).kind, let (x, at) = node.content.first?.data else {
            return XCTFail("d-next has no data")
        }
        let length = node.content[0].length
        let expected = Array(contents.first { $0.0 == "d-next" }!.1.prefix(Int(length)))
        let state = Condition()
        var pushed: [[UInt8]] = []
        var released = false
        fs.prefetcher.setPush { data, targets in
            let t = targets[0]
            state.withLock { pushed.append(Array(data[Int(t.offset)..<Int(t.offset + t.length)])); state.broadcast() }
        }
        counting.reset()
        var got: [UInt8]?
        let reader = PThread.start {
            got = try? fs.prefetcher.load(x) {
                state.withLock { while !released { state.wait() } }
                return try fs.repo.loadBlob(x, type: .data)
            }
        }
        poll("the reader's load has begun") { fs.prefetcher.readerIsLoading(x) }
        fs.prefetcher.enqueueSiblings([(x, PushTarget(inode: 99, offset: at, length: length))])
        poll("a prefetch thread took the chunk and left it to the reader") { fs.prefetcher.pushesWaitingForReaders == 1 }
        XCTAssertEqual(counting.reads(of: .packs), 0, "the prefetch loaded the chunk the reader is loading")
        state.withLock { released = true; state.broadcast() }
        poll("the chunk is pushed once the reader has it") { state.withLock { pushed.count == 1 } }
        pthread_join(reader, nil)
        XCTAssertEqual(got.map { Array($0[Int(at)..<Int(at + length)]) }, expected)
        XCTAssertEqual(state.withLock { pushed }, [expected])
        XCTAssertEqual(counting.reads(of: .packs), 1, "one read of the pack for the reader and the push together")
    }

    /// tar reads a subdirectory's files before the files listed after it: reading a file loads
    /// the first chunks of the following subdirectories' files too (their trees were read ahead
    /// when the directory was listed), so the reader's first request there finds them decrypted.
    func testReadingAFileLoadsTheFirstChunksOfTheFollowingSubdirectories() throws {
        let src = makeTree(dirs: ["b", "b/deep"], files: ["a", "b/x", "b/deep/y", "c"].enumerated().map {
            ($1, storeTestBytes(count: 300_000, seed: UInt64(40 + $0)))
        })
        let (fs, node) = try backUpAndMount(src)
        defer { fs.shutdown() }
        // (Looking up b/deep/y puts b/deep's tree at hand, as a walk that listed b would.)
        let firstChunk = try ["b/x", "b/deep/y", "c"].map { try entry(fs, node, $0).node.content.first!.data!.id }
        XCTAssertEqual(try fs.list(node).count, 5)   // ., .., a, b, c: reads b's tree ahead
        try poll("b's tree is read ahead") { fs.trees.contains(try entry(fs, node, "b").node.subtree!) }
        XCTAssertFalse(firstChunk.contains { fs.repo.isCached($0) }, "nothing is loaded before a read")
        _ = try fs.read(inode: try entry(fs, node, "a").id, offset: 0, count: 4096)
        poll("the first chunks of b/x, b/deep/y and c are loaded") { firstChunk.allSatisfy { fs.repo.isCached($0) } }
    }

    /// Past the last file of a directory the prefetch goes on in its parent, after it: the
    /// next directory tar walks into, and the files after that.
    func testReadingTheLastFileOfADirectoryLoadsWhatFollowsInItsParent() throws {
        let src = makeTree(dirs: ["a", "b"], files: ["a/x", "b/y", "c"].enumerated().map {
            ($1, storeTestBytes(count: 300_000, seed: UInt64(50 + $0)))
        })
        let (fs, node) = try backUpAndMount(src)
        defer { fs.shutdown() }
        let following = try ["b/y", "c"].map { try entry(fs, node, $0).node.content.first!.data!.id }
        XCTAssertFalse(following.contains { fs.repo.isCached($0) }, "nothing is loaded before a read")
        _ = try fs.read(inode: try entry(fs, node, "a/x").id, offset: 0, count: 4096)
        poll("b/y and c were not loaded after a/x was read") { following.allSatisfy { fs.repo.isCached($0) } }
    }

    /// The prefetch threads run below the FUSE threads (nice 5): on two busy cores, a request a
    /// reader waits for is served before chunks for later.
    func testPrefetchThreadsRunAtALowerPriority() throws {
        func niceValues() throws -> [Int] {
            try Posix.readDirectory(RawPath("/proc/self/task")).compactMap { tid -> Int? in
                guard let bytes = storeTestReadFile(RawPath("/proc/self/task/" + String(decoding: tid, as: UTF8.self) + "/stat")) else { return nil }
                let stat = String(decoding: bytes, as: UTF8.self)
                guard let close = stat.lastIndex(of: ")") else { return nil }
                let fields = stat[stat.index(after: close)...].split(separator: " ")
                return Int(fields[16])   // field 19 of stat: nice (fields after the name start at 3)
            }
        }
        let before = try niceValues().filter { $0 == Int(Prefetcher.nice) }.count
        let (fs, _) = try mounted()
        defer { fs.shutdown() }
        let deadline = Date().addingTimeInterval(10)
        var now = 0
        repeat { now = try niceValues().filter { $0 == Int(Prefetcher.nice) }.count; usleep(1000) }   // polling interval
            while now < before + 2 && Date() < deadline
        XCTAssertGreaterThanOrEqual(now - before, 2, "prefetch threads at nice \(Prefetcher.nice)")
        XCTAssertEqual(Prefetcher.nice, 5)
    }

    /// Listing a directory loads its subdirectories' trees in the background, so a walk that
    /// descends next finds them decoded; directories nobody listed are not loaded.
    func testListingADirectoryReadsItsSubdirectoryTreesAhead() throws {
        let src = makeTree(dirs: ["s1", "s2", "s1/deep"],
                           files: [("s1/f", Array("one".utf8)), ("s2/g", Array("two".utf8)), ("s1/deep/h", Array("three".utf8))])
        let (fs, node) = try backUpAndMount(src)
        defer { fs.shutdown() }
        func subtree(_ parent: UInt64, _ name: String) throws -> BlobID {
            guard case .node(_, let n) = try fs.entry(try fs.lookup(parent: parent, name: Array(name.utf8)).id).kind,
                  let t = n.subtree else { throw FSError(ENOTDIR) }
            return t
        }
        let s1 = try subtree(node, "s1"), s2 = try subtree(node, "s2")
        let deep = try subtree(try fs.lookup(parent: node, name: Array("s1".utf8)).id, "deep")
        for id in [s1, s2, deep] { fs.trees.remove(id) }
        XCTAssertEqual(try fs.list(node).count, 4)   // ., .., s1, s2
        poll("the subdirectories' trees were not read ahead") { fs.trees.contains(s1) && fs.trees.contains(s2) }
        XCTAssertFalse(fs.trees.contains(deep), "a directory two levels down was read before its parent was listed")
    }
}

/// Forwards to a local backend and counts the reads of each kind of object.
final class CountingBackend: Backend, @unchecked Sendable {
    private let inner: LocalBackend
    private let lock = Mutex()
    private var counts: [ObjectKind: Int] = [:]

    init(_ inner: LocalBackend) { self.inner = inner }

    func reset() { lock.withLock { counts.removeAll() } }
    func reads(of kind: ObjectKind) -> Int { lock.withLock { counts[kind] ?? 0 } }

    var location: String { inner.location }
    var stagingDirectory: RawPath { inner.stagingDirectory }
    func get(_ name: ObjectName, range: Range<Int64>?) throws -> [UInt8] {
        lock.withLock { counts[name.kind, default: 0] += 1 }
        return try inner.get(name, range: range)
    }
    func stat(_ name: ObjectName) throws -> ObjectInfo { try inner.stat(name) }
    func list(_ kind: ObjectKind) throws -> [ObjectInfo] { try inner.list(kind) }
    func put(_ name: ObjectName, _ bytes: [UInt8]) throws { try inner.put(name, bytes) }
    func putFile(_ name: ObjectName, from path: RawPath) throws { try inner.putFile(name, from: path) }
    func delete(_ name: ObjectName) throws { try inner.delete(name) }
}
