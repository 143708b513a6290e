import Dispatch
import Glibc
import Store
import XCTest

/// Tests of the POSIX layer (RawPath, Posix, PosixFileHandle) against real files in a temp dir.
/// Several tests need root (mknod of devices, lchown, trusted.* xattrs) and the
/// `setfacl`/`getfacl` tools (package `acl`).
final class POSIXTests: XCTestCase {
    private var dir = RawPath("/nonexistent")

    override func setUpWithError() throws {
        var template = Array("/tmp/coffer-posix-XXXXXX".utf8CString)
        let created = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        XCTAssertNotNil(created)
        dir = RawPath(bytes: template.dropLast().map { UInt8(bitPattern: $0) })
    }

    override func tearDownWithError() throws {
        try removeTree(dir)
    }

    // MARK: RawPath

    func testRawPathComponentsWithInvalidUTF8AndNewlines() {
        let path = RawPath(bytes: Array("/a/b".utf8) + [0xFF, 0x0A] + Array("//c d/".utf8))
        XCTAssertEqual(path.components, [[0x61], [0x62, 0xFF, 0x0A], Array("c d".utf8)])
        XCTAssertEqual(path.lastComponent, Array("c d".utf8))
        XCTAssertEqual(path.parent, RawPath(bytes: Array("/a/b".utf8) + [0xFF, 0x0A]))
        XCTAssertTrue(path.isAbsolute)
        XCTAssertFalse(RawPath("a/b").isAbsolute)

        XCTAssertEqual(RawPath("/a/b").parent, RawPath("/a"))
        XCTAssertEqual(RawPath("/a").parent, RawPath("/"))
        XCTAssertEqual(RawPath("/").parent, RawPath("/"))
        XCTAssertEqual(RawPath("a/b").parent, RawPath("a"))
        XCTAssertEqual(RawPath("a").parent, RawPath("."))
        XCTAssertEqual(RawPath("/").components, [])
        XCTAssertEqual(RawPath("/").lastComponent, [])

        XCTAssertEqual(RawPath("/").appending("etc"), RawPath("/etc"))
        XCTAssertEqual(RawPath("/usr").appending("lib"), RawPath("/usr/lib"))
        XCTAssertEqual(RawPath("/usr/").appending("lib"), RawPath("/usr/lib"))
        XCTAssertEqual(RawPath("/usr").appending("/lib"), RawPath("/usr/lib"))
        XCTAssertEqual(RawPath("/x").appending([0xFF, 0x0A]), RawPath(bytes: [0x2F, 0x78, 0x2F, 0xFF, 0x0A]))
    }

    func testRawPathNormalization() {
        XCTAssertEqual(RawPath("/a/./b//../c/").normalizedAbsolute(), RawPath("/a/c"))
        XCTAssertEqual(RawPath("/../..").normalizedAbsolute(), RawPath("/"))
        XCTAssertEqual(RawPath("//").normalizedAbsolute(), RawPath("/"))
        XCTAssertEqual(RawPath("/a/..").normalizedAbsolute(), RawPath("/"))
        XCTAssertEqual(RawPath("/a/...").normalizedAbsolute(), RawPath("/a/..."))
        let odd = RawPath(bytes: Array("/x".utf8) + [0xFF] + Array("/./y\n/../z/".utf8))
        XCTAssertEqual(odd.normalizedAbsolute(), RawPath(bytes: Array("/x".utf8) + [0xFF] + Array("/z".utf8)))

        let cwd = currentDirectory()
        XCTAssertEqual(RawPath("q/./r/..").normalizedAbsolute(), cwd.appending("q"))
        XCTAssertEqual(RawPath(".").normalizedAbsolute(), cwd)
    }

    func testRawPathDescriptionOrderingAndCString() {
        let path = RawPath(bytes: Array("/tmp/a b".utf8) + [0xFF, 0x0A] + Array("é\\".utf8))
        XCTAssertEqual(path.description, "/tmp/a b\\xFF\\né\\\\")
        XCTAssertEqual(RawPath(bytes: [0x61, 0xC3]).description, "a\\xC3")   // truncated sequence

        XCTAssertLessThan(RawPath(bytes: [0x61, 0x7F]), RawPath(bytes: [0x61, 0xFF]))
        XCTAssertLessThan(RawPath("/a"), RawPath("/a/b"))
        XCTAssertEqual([RawPath("/b"), RawPath("/a")].sorted(), [RawPath("/a"), RawPath("/b")])

        path.withCString { cString in
            XCTAssertEqual(strlen(cString), path.bytes.count)
            XCTAssertEqual(UInt8(bitPattern: cString[8]), 0xFF)
        }
        XCTAssertNil(RawPath(validating: [0x61, 0x00]))
        XCTAssertNotNil(RawPath(validating: [0x61, 0xFF]))
    }

    // MARK: Reading

    func testReadDirectoryReturnsRawNames() throws {
        let oddName: [UInt8] = [0x66, 0xFF, 0x0A, 0x20, 0x67]   // "f\xFF\n g"
        let oddPath = dir.appending(oddName)
        let fd = oddPath.withCString { Glibc.open($0, O_WRONLY | O_CREAT | O_EXCL, 0o644) }
        XCTAssertGreaterThanOrEqual(fd, 0)
        Glibc.close(fd)
        try writeFile(dir.appending("b"), [1])
        try Posix.makeDirectory(dir.appending("a"), permissions: 0o755)

        XCTAssertEqual(try Posix.readDirectory(dir), [Array("a".utf8), Array("b".utf8), oddName])
        XCTAssertEqual(try Posix.readDirectory(dir.appending("a")), [])
        XCTAssertEqual(try Posix.lstat(oddPath).kind, .file)

        // Not followed through a symlink.
        try Posix.makeSymlink(dir.appending("link"), target: Array("a".utf8))
        XCTAssertThrowsError(try Posix.readDirectory(dir.appending("link"))) { error in
            XCTAssertTrue([ELOOP, ENOTDIR].contains((error as? PosixError)?.errno ?? 0))
        }
    }

    func testLstatOfEachKind() throws {
        let file = dir.appending("file")
        try writeFile(file, Array("hello".utf8))
        let fileStatus = try Posix.lstat(file)
        XCTAssertEqual(fileStatus.kind, .file)
        XCTAssertEqual(fileStatus.size, 5)
        XCTAssertEqual(fileStatus.nlink, 1)
        XCTAssertGreaterThan(fileStatus.inode, 0)

        let subdir = dir.appending("dir")
        try Posix.makeDirectory(subdir, permissions: 0o700)
        XCTAssertEqual(try Posix.lstat(subdir).kind, .directory)
        XCTAssertEqual(try Posix.lstat(subdir).permissions, 0o700)

        let link = dir.appending("link")
        let target: [UInt8] = Array("no/such".utf8) + [0xFF, 0x0A]
        try Posix.makeSymlink(link, target: target)
        let linkStatus = try Posix.lstat(link)
        XCTAssertEqual(linkStatus.kind, .symlink)
        XCTAssertEqual(linkStatus.size, Int64(target.count))
        XCTAssertEqual(try Posix.readLink(link), target)

        let longTarget = [UInt8](repeating: 0x78, count: 3000)
        try Posix.makeSymlink(dir.appending("longlink"), target: longTarget)
        XCTAssertEqual(try Posix.readLink(dir.appending("longlink")), longTarget)

        let fifo = dir.appending("fifo")
        try Posix.makeNode(fifo, kind: .fifo, permissions: 0o640, rdev: 0)
        XCTAssertEqual(try Posix.lstat(fifo).kind, .fifo)

        XCTAssertEqual(Posix.makeDevice(major: 1, minor: 3), 0x103)
        let null = dir.appending("null")
        try Posix.makeNode(null, kind: .charDevice, permissions: 0o666, rdev: Posix.makeDevice(major: 1, minor: 3))
        let nullStatus = try Posix.lstat(null)
        XCTAssertEqual(nullStatus.kind, .charDevice)
        XCTAssertEqual(nullStatus.rdevMajor, 1)
        XCTAssertEqual(nullStatus.rdevMinor, 3)
        XCTAssertEqual(nullStatus.rdev, try Posix.lstat(RawPath("/dev/null")).rdev)

        let block = dir.appending("block")
        let bigDevice = Posix.makeDevice(major: 259, minor: 70000)
        try Posix.makeNode(block, kind: .blockDevice, permissions: 0o660, rdev: bigDevice)
        let blockStatus = try Posix.lstat(block)
        XCTAssertEqual(blockStatus.kind, .blockDevice)
        XCTAssertEqual(blockStatus.rdev, bigDevice)
        XCTAssertEqual(blockStatus.rdevMajor, 259)
        XCTAssertEqual(blockStatus.rdevMinor, 70000)

        let socketNode = dir.appending("sock-node")
        try Posix.makeNode(socketNode, kind: .socket, permissions: 0o600, rdev: 0)
        XCTAssertEqual(try Posix.lstat(socketNode).kind, .socket)

        let boundSocket = dir.appending("sock")
        let socketFD = try bindUnixSocket(boundSocket)
        defer { Glibc.close(socketFD) }
        XCTAssertEqual(try Posix.lstat(boundSocket).kind, .socket)

        XCTAssertThrowsError(try Posix.makeNode(dir.appending("x"), kind: .directory, permissions: 0o755, rdev: 0)) {
            XCTAssertEqual(($0 as? PosixError)?.errno, EINVAL)
        }
    }

    func testFstatMatchesLstat() throws {
        let file = dir.appending("f")
        try writeFile(file, [1, 2, 3])
        let handle = try PosixFileHandle.openForReading(file)
        XCTAssertEqual(try Posix.fstat(handle.fd), try Posix.lstat(file))
        XCTAssertEqual(try handle.status(), try Posix.lstat(file))
    }

    // MARK: Metadata

    func testSpecialPermissionBitsSurvive() throws {
        let file = dir.appending("suid")
        try writeFile(file, [0])
        try Posix.setPermissions(file, 0o4755)
        XCTAssertEqual(try Posix.lstat(file).permissions, 0o4755)
        try Posix.setPermissions(file, 0o2710)
        XCTAssertEqual(try Posix.lstat(file).permissions, 0o2710)
        try Posix.setPermissions(file, 0o7777)
        XCTAssertEqual(try Posix.lstat(file).permissions, 0o7777)

        let sticky = dir.appending("sticky")
        try Posix.makeDirectory(sticky, permissions: 0o755)
        try Posix.setPermissions(sticky, 0o1777)
        XCTAssertEqual(try Posix.lstat(sticky).permissions, 0o1777)

        // A symlink: no-op, and the target is untouched.
        let link = dir.appending("link")
        try Posix.makeSymlink(link, target: Array("suid".utf8))
        try Posix.setPermissions(link, 0o600)
        XCTAssertEqual(try Posix.lstat(file).permissions, 0o7777)
        XCTAssertEqual(try Posix.lstat(link).kind, .symlink)
    }

    func testSetOwner() throws {
        let file = dir.appending("owned")
        try writeFile(file, [0])
        try Posix.setOwner(file, uid: 1234, gid: 5678)
        let status = try Posix.lstat(file)
        XCTAssertEqual(status.uid, 1234)
        XCTAssertEqual(status.gid, 5678)

        // lchown: the link itself changes, not its target.
        let link = dir.appending("link")
        try Posix.makeSymlink(link, target: Array("owned".utf8))
        try Posix.setOwner(link, uid: 42, gid: 43)
        XCTAssertEqual(try Posix.lstat(link).uid, 42)
        XCTAssertEqual(try Posix.lstat(link).gid, 43)
        XCTAssertEqual(try Posix.lstat(file).uid, 1234)

        // chown clears setuid, so restore must chmod after chown.
        try Posix.setPermissions(file, 0o4755)
        try Posix.setOwner(file, uid: 1235, gid: 5678)
        XCTAssertEqual(try Posix.lstat(file).permissions & 0o4000, 0)
        try Posix.setPermissions(file, 0o4755)
        XCTAssertEqual(try Posix.lstat(file).permissions, 0o4755)
    }

    func testSetTimesWithNanoseconds() throws {
        let file = dir.appending("timed")
        try writeFile(file, [0])
        let atime = Timespec(seconds: 1_234_567_890, nanoseconds: 123_456_789)
        let mtime = Timespec(seconds: 1_600_000_000, nanoseconds: 987_654_321)
        try Posix.setTimes(file, atime: atime, mtime: mtime)
        let status = try Posix.lstat(file)
        XCTAssertEqual(status.atime, atime)
        XCTAssertEqual(status.mtime, mtime)

        // Before 1970.
        let old = Timespec(seconds: -86_400 * 365, nanoseconds: 1)
        try Posix.setTimes(file, atime: old, mtime: old)
        XCTAssertEqual(try Posix.lstat(file).mtime, old)

        // On a symlink: the link's times, not the target's.
        let link = dir.appending("link")
        try Posix.makeSymlink(link, target: Array("timed".utf8))
        let linkTime = Timespec(seconds: 1_000_000_000, nanoseconds: 5)
        try Posix.setTimes(link, atime: linkTime, mtime: linkTime)
        XCTAssertEqual(try Posix.lstat(link).mtime, linkTime)
        XCTAssertEqual(try Posix.lstat(file).mtime, old)
    }

    func testUserXattrRoundTrip() throws {
        let file = dir.appending("xattrs")
        try writeFile(file, [0])
        XCTAssertTrue(try Posix.extendedAttributes(file).isEmpty)

        let binary: [UInt8] = [0x00, 0xFF, 0x0A, 0x41]
        try Posix.setExtendedAttribute(file, name: Array("user.b".utf8), value: binary)
        try Posix.setExtendedAttribute(file, name: Array("user.a".utf8), value: Array("first".utf8))
        try Posix.setExtendedAttribute(file, name: Array("user.empty".utf8), value: [])
        let big = [UInt8](repeating: 0x5A, count: 3000)
        try Posix.setExtendedAttribute(file, name: Array("user.big".utf8), value: big)

        let attributes = try Posix.extendedAttributes(file)
        XCTAssertEqual(attributes.map(\.name), ["user.a", "user.b", "user.big", "user.empty"].map { Array($0.utf8) })
        XCTAssertEqual(attributes.map(\.value), [Array("first".utf8), binary, big, []])
        XCTAssertEqual(try Posix.extendedAttribute(file, name: Array("user.b".utf8)), binary)
        XCTAssertNil(try Posix.extendedAttribute(file, name: Array("user.none".utf8)))

        try Posix.setExtendedAttribute(file, name: Array("user.a".utf8), value: Array("second".utf8))
        try Posix.removeExtendedAttribute(file, name: Array("user.b".utf8))
        let after = try Posix.extendedAttributes(file)
        XCTAssertEqual(after.map(\.name), ["user.a", "user.big", "user.empty"].map { Array($0.utf8) })
        XCTAssertEqual(after.first?.value, Array("second".utf8))
    }

    func testPosixACLIsAnXattrAndCopies() throws {
        let source = dir.appending("acl-source")
        let copy = dir.appending("acl-copy")
        try writeFile(source, [0])
        try writeFile(copy, [0])
        XCTAssertEqual(try run(["setfacl", "-m", "u:1234:r", source.description]).status, 0)

        let attributes = try Posix.extendedAttributes(source)
        let acl = attributes.first { $0.name == Array("system.posix_acl_access".utf8) }
        XCTAssertNotNil(acl)
        try Posix.setExtendedAttribute(copy, name: acl!.name, value: acl!.value)

        let sourceACL = try run(["getfacl", "--omit-header", "--numeric", "--absolute-names", source.description])
        let copyACL = try run(["getfacl", "--omit-header", "--numeric", "--absolute-names", copy.description])
        XCTAssertEqual(sourceACL.status, 0)
        XCTAssertTrue(sourceACL.output.contains("user:1234:r--"), sourceACL.output)
        XCTAssertEqual(copyACL.output, sourceACL.output)
        XCTAssertEqual(try Posix.lstat(copy).permissions, try Posix.lstat(source).permissions)

        // Default ACL on a directory.
        let aclDir = dir.appending("acl-dir")
        try Posix.makeDirectory(aclDir, permissions: 0o755)
        XCTAssertEqual(try run(["setfacl", "-d", "-m", "u:1234:rx", aclDir.description]).status, 0)
        let names = try Posix.extendedAttributes(aclDir).map(\.name)
        XCTAssertTrue(names.contains(Array("system.posix_acl_default".utf8)))
    }

    func testXattrsOnSymlinkAreNotFollowed() throws {
        let target = dir.appending("target")
        try writeFile(target, [0])
        try Posix.setExtendedAttribute(target, name: Array("user.mark".utf8), value: [1])
        let link = dir.appending("link")
        try Posix.makeSymlink(link, target: Array("target".utf8))

        XCTAssertFalse(try Posix.extendedAttributes(link).contains { $0.name == Array("user.mark".utf8) })
        XCTAssertNil(try Posix.extendedAttribute(link, name: Array("user.mark".utf8)))

        // user.* is not allowed on symlinks: lsetxattr fails instead of writing the target.
        XCTAssertThrowsError(try Posix.setExtendedAttribute(link, name: Array("user.other".utf8), value: [2])) {
            XCTAssertEqual(($0 as? PosixError)?.errno, EPERM)
            XCTAssertEqual(($0 as? PosixError)?.operation, "lsetxattr")
        }
        XCTAssertEqual(try Posix.extendedAttributes(target).map(\.name), [Array("user.mark".utf8)])

        // trusted.* (root) can live on the link itself.
        try Posix.setExtendedAttribute(link, name: Array("trusted.coffer".utf8), value: [3])
        XCTAssertEqual(try Posix.extendedAttributes(link).map(\.name), [Array("trusted.coffer".utf8)])
        XCTAssertEqual(try Posix.extendedAttributes(target).map(\.name), [Array("user.mark".utf8)])
    }

    // MARK: Sparse files

    func testDataExtentsOfSparseAndDenseFiles() throws {
        let sparse = dir.appending("sparse")
        let mebibyte: Int64 = 1 << 20
        let writer = try PosixFileHandle.create(sparse, permissions: 0o644)
        try writer.truncate(10 * mebibyte)
        let chunk = [UInt8](repeating: 0xAB, count: 4096)
        try chunk.withUnsafeBytes { try writer.pwrite($0, at: 5 * mebibyte) }
        try writer.sync()
        writer.close()

        let reader = try PosixFileHandle.openForReading(sparse)
        let status = try reader.status()
        XCTAssertEqual(status.size, 10 * mebibyte)
        XCTAssertLessThan(status.blocks, 10 * mebibyte / 512)
        let extents = try reader.dataExtents(size: status.size)
        XCTAssertEqual(extents.count, 1)
        XCTAssertEqual(extents.first?.offset, 5 * mebibyte)
        XCTAssertEqual(extents.first?.length, 4096)
        XCTAssertEqual(try reader.readExactly(count: 4096, at: 5 * mebibyte), chunk)
        XCTAssertEqual(try reader.readExactly(count: 16, at: 0), [UInt8](repeating: 0, count: 16))
        XCTAssertThrowsError(try reader.readExactly(count: 2, at: 10 * mebibyte - 1)) {
            XCTAssertEqual(($0 as? PosixError)?.errno, ENODATA)
        }

        // File position is unaffected by dataExtents.
        var first = [UInt8](repeating: 1, count: 8)
        let count = try first.withUnsafeMutableBytes { try reader.read(into: $0) }
        XCTAssertEqual(count, 8)
        XCTAssertEqual(first, [UInt8](repeating: 0, count: 8))

        let dense = dir.appending("dense")
        let content = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try writeFile(dense, content)
        let denseReader = try PosixFileHandle.openForReading(dense)
        let denseExtents = try denseReader.dataExtents(size: 100_000)
        XCTAssertEqual(denseExtents.count, 1)
        XCTAssertEqual(denseExtents.first?.offset, 0)
        XCTAssertEqual(denseExtents.first?.length, 100_000)
        XCTAssertEqual(try readAll(denseReader), content)

        let empty = dir.appending("empty")
        try writeFile(empty, [])
        XCTAssertTrue(try PosixFileHandle.openForReading(empty).dataExtents(size: 0).isEmpty)

        let allHole = dir.appending("hole")
        let holeWriter = try PosixFileHandle.create(allHole, permissions: 0o644)
        try holeWriter.truncate(mebibyte)
        XCTAssertTrue(try holeWriter.dataExtents(size: mebibyte).isEmpty)
    }

    // MARK: Links and handles

    func testMakeHardLink() throws {
        let original = dir.appending("original")
        try writeFile(original, [9])
        let link = dir.appending("hard")
        try Posix.makeHardLink(link, existing: original)
        let a = try Posix.lstat(original), b = try Posix.lstat(link)
        XCTAssertEqual(a.inode, b.inode)
        XCTAssertEqual(a.device, b.device)
        XCTAssertEqual(a.nlink, 2)
        XCTAssertEqual(b.nlink, 2)

        // A hard link to a symlink links the symlink itself.
        let symlink = dir.appending("sym")
        try Posix.makeSymlink(symlink, target: Array("original".utf8))
        try Posix.makeHardLink(dir.appending("sym2"), existing: symlink)
        XCTAssertEqual(try Posix.lstat(dir.appending("sym2")).kind, .symlink)
        XCTAssertEqual(try Posix.lstat(symlink).nlink, 2)
    }

    func testFileHandleRefusesNonRegularFiles() throws {
        let file = dir.appending("file")
        try writeFile(file, Array("data".utf8))
        let link = dir.appending("link")
        try Posix.makeSymlink(link, target: Array("file".utf8))
        XCTAssertThrowsError(try PosixFileHandle.openForReading(link)) {
            XCTAssertEqual(($0 as? PosixError)?.errno, ELOOP)
            XCTAssertEqual(($0 as? PosixError)?.operation, "open")
            XCTAssertEqual(($0 as? PosixError)?.path, link)
        }

        let fifo = dir.appending("fifo")
        try Posix.makeNode(fifo, kind: .fifo, permissions: 0o644, rdev: 0)
        XCTAssertThrowsError(try PosixFileHandle.openForReading(fifo)) {   // must not block
            XCTAssertEqual(($0 as? PosixError)?.errno, EINVAL)
        }
        XCTAssertThrowsError(try PosixFileHandle.openForReading(dir)) {
            XCTAssertEqual(($0 as? PosixError)?.errno, EISDIR)
        }
        let device = dir.appending("zero")
        try Posix.makeNode(device, kind: .charDevice, permissions: 0o644, rdev: Posix.makeDevice(major: 1, minor: 5))
        XCTAssertThrowsError(try PosixFileHandle.openForReading(device))

        let handle = try PosixFileHandle.openForReading(file)
        XCTAssertEqual(try readAll(handle), Array("data".utf8))
        handle.close()
        handle.close()
        XCTAssertThrowsError(try handle.status()) { XCTAssertEqual(($0 as? PosixError)?.errno, EBADF) }
    }


    /// The backup walk's variant: its own lstat stands in for the pre-check; the fstat after
    /// opening still refuses a FIFO swapped in (without blocking), and the handle ends up
    /// blocking (O_NONBLOCK cleared) with O_NOATIME kept.
    func testOpenRegularFileWithTheWalksLstat() throws {
        let file = dir.appending("file")
        try writeFile(file, Array("walked".utf8))
        let (handle, status) = try PosixFileHandle.openRegularFile(file, lstatKind: .file)
        XCTAssertEqual(status, try Posix.lstat(file))
        XCTAssertEqual(try readAll(handle), Array("walked".utf8))
        let flags = fcntl(handle.fd, F_GETFL)
        XCTAssertEqual(flags & O_NONBLOCK, 0, "O_NONBLOCK must be cleared")
        if getuid() == 0 { XCTAssertNotEqual(flags & 0o1000000, 0, "O_NOATIME must stay set") }

        // The walk saw a file; a FIFO is there now: refused by fstat, and open did not block.
        let swapped = dir.appending("swapped")
        try Posix.makeNode(swapped, kind: .fifo, permissions: 0o644, rdev: 0)
        XCTAssertThrowsError(try PosixFileHandle.openRegularFile(swapped, lstatKind: .file)) {
            XCTAssertEqual(($0 as? PosixError)?.errno, EINVAL)
            XCTAssertEqual(($0 as? PosixError)?.path, swapped)
        }
        // The walk saw a symlink or a directory: refused before anything is opened.
        XCTAssertThrowsError(try PosixFileHandle.openRegularFile(file, lstatKind: .symlink)) {
            XCTAssertEqual(($0 as? PosixError)?.errno, ELOOP)
        }
        XCTAssertThrowsError(try PosixFileHandle.openRegularFile(file, lstatKind: .directory)) {
            XCTAssertEqual(($0 as? PosixError)?.errno, EISDIR)
        }
    }
    func testCreateIsExclusiveAndDoesNotFollowSymlinks() throws {
        let file = dir.appending("new")
        let handle = try PosixFileHandle.create(file, permissions: 0o600)
        try Array("abc".utf8).withUnsafeBytes { try handle.write($0) }
        XCTAssertEqual(try handle.status().size, 3)
        handle.close()
        XCTAssertThrowsError(try PosixFileHandle.create(file, permissions: 0o600)) {
            XCTAssertEqual(($0 as? PosixError)?.errno, EEXIST)
        }
        let dangling = dir.appending("dangling")
        try Posix.makeSymlink(dangling, target: Array("would-be-created".utf8))
        XCTAssertThrowsError(try PosixFileHandle.create(dangling, permissions: 0o600))
        XCTAssertThrowsError(try Posix.lstat(dir.appending("would-be-created")))
    }

    // MARK: Restore helpers

    func testMakeDirectoryRemoveRenameFsync() throws {
        let sub = dir.appending("sub")
        try Posix.makeDirectory(sub, permissions: 0o755)
        try Posix.makeDirectory(sub, permissions: 0o700)   // existing directory: fine
        let file = dir.appending("file")
        try writeFile(file, [])
        XCTAssertThrowsError(try Posix.makeDirectory(file, permissions: 0o755)) {
            XCTAssertEqual(($0 as? PosixError)?.errno, EEXIST)
        }

        let renamed = dir.appending([0xFE, 0x0A])
        try Posix.rename(file, renamed)
        XCTAssertEqual(try Posix.lstat(renamed).kind, .file)
        try Posix.fsyncDirectory(dir)

        try writeFile(sub.appending("inner"), [])
        XCTAssertThrowsError(try Posix.remove(sub)) {
            XCTAssertEqual(($0 as? PosixError)?.errno, ENOTEMPTY)
            XCTAssertEqual(($0 as? PosixError)?.operation, "rmdir")
        }
        try Posix.remove(sub.appending("inner"))
        try Posix.remove(sub)
        let link = dir.appending("link")
        try Posix.makeSymlink(link, target: [0xFE, 0x0A])
        try Posix.remove(link)
        try Posix.remove(renamed)
        XCTAssertEqual(try Posix.readDirectory(dir), [])
    }

    // MARK: Errors

    func testPosixErrorDescription() throws {
        XCTAssertEqual(PosixError(errno: EACCES, operation: "open", path: RawPath("/etc/shadow")).description,
                       "open /etc/shadow: Permission denied")
        XCTAssertEqual(PosixError(errno: EBADF, operation: "fstat", path: nil).description,
                       "fstat: Bad file descriptor")

        let missing = dir.appending([0xFF, 0x0A])
        XCTAssertThrowsError(try Posix.lstat(missing)) { error in
            guard let error = error as? PosixError else { return XCTFail("\(error)") }
            XCTAssertEqual(error, PosixError(errno: ENOENT, operation: "lstat", path: missing))
            XCTAssertEqual(error.description, "lstat \(self.dir.description)/\\xFF\\n: No such file or directory")
        }
        XCTAssertThrowsError(try Posix.lstat(RawPath(bytes: [0x2F, 0x00, 0x61]))) {
            XCTAssertEqual(($0 as? PosixError)?.errno, EINVAL)
        }
    }

    // MARK: Identity

    func testUserAndGroupNames() {
        XCTAssertEqual(Posix.userName(0), "root")
        XCTAssertEqual(Posix.userName(0), "root")   // cached
        XCTAssertEqual(Posix.groupName(0), "root")
        XCTAssertEqual(Posix.uid(forUserName: "root"), 0)
        XCTAssertEqual(Posix.gid(forGroupName: "root"), 0)
        XCTAssertNil(Posix.userName(3_999_999_999))
        XCTAssertNil(Posix.uid(forUserName: "coffer-no-such-user"))
        XCTAssertNil(Posix.gid(forGroupName: ""))

        DispatchQueue.concurrentPerform(iterations: 64) { i in
            XCTAssertEqual(Posix.userName(UInt32(i % 2) * 0), "root")
            XCTAssertEqual(Posix.groupName(0), "root")
            _ = Posix.userName(UInt32(10_000 + i))
        }
    }

    // MARK: Helpers

    private func writeFile(_ path: RawPath, _ bytes: [UInt8]) throws {
        let handle = try PosixFileHandle.create(path, permissions: 0o644)
        try bytes.withUnsafeBytes { try handle.write($0) }
        handle.close()
    }

    private func readAll(_ handle: PosixFileHandle) throws -> [UInt8] {
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 7000)
        while true {
            let n = try buffer.withUnsafeMutableBytes { try handle.read(into: $0) }
            if n == 0 { return result }
            result += buffer[..<n]
        }
    }

    private func removeTree(_ path: RawPath) throws {
        guard let status = try? Posix.lstat(path) else { return }
        if status.kind == .directory {
            for name in try Posix.readDirectory(path) { try removeTree(path.appending(name)) }
        }
        try Posix.remove(path)
    }

    private func currentDirectory() -> RawPath {
        var buffer = [CChar](repeating: 0, count: 8192)
        let ok = buffer.withUnsafeMutableBufferPointer { getcwd($0.baseAddress, $0.count) != nil }
        XCTAssertTrue(ok)
        return RawPath(bytes: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) })
    }

    private func bindUnixSocket(_ path: RawPath) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        XCTAssertGreaterThanOrEqual(fd, 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        precondition(path.bytes.count < capacity)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in path.bytes.enumerated() { raw[i] = byte }
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        XCTAssertEqual(result, 0)
        return fd
    }

    /// Runs a command (PATH lookup), returning its exit status and stdout.
    private func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        var pipeFDs: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&pipeFDs), 0)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 1)
        posix_spawn_file_actions_addclose(&actions, pipeFDs[0])
        posix_spawn_file_actions_addclose(&actions, pipeFDs[1])

        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawnp(&pid, arguments[0], &actions, nil, &argv, environ)
        Glibc.close(pipeFDs[1])
        defer { Glibc.close(pipeFDs[0]) }
        guard spawned == 0 else { throw PosixError(errno: spawned, operation: "posix_spawnp", path: nil) }

        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(pipeFDs[0], $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            output += buffer[..<n]
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exitCode = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : -1
        return (exitCode, String(decoding: output, as: UTF8.self))
    }
}
