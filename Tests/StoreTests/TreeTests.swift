@testable import Store
import XCTest

/// Tree blobs (docs/FORMAT.md §8).
final class TreeTests: XCTestCase {
    private func fullFile(_ name: [UInt8]) -> Node {
        var n = Node(name: name, kind: .file)
        n.permissions = 0o4755          // setuid kept
        n.uid = 4_000_000_000
        n.gid = 100
        n.user = "ann"
        n.group = "grüppe"
        n.size = 10 << 30
        n.mtime = Timespec(seconds: 1_795_140_000, nanoseconds: 123_456_789)
        n.atime = Timespec(seconds: -1, nanoseconds: 999_999_999)     // before 1970
        n.ctime = Timespec(seconds: Int64.min / 4, nanoseconds: 1)
        n.inode = UInt64.max
        n.device = 0x0803
        n.nlink = 3
        n.xattrs = [
            Node.Xattr(name: Array("user.binary".utf8), value: [0x00, 0xff, 0x00, 0x80, 0x0a]),
            Node.Xattr(name: Array("user.empty".utf8), value: []),
            Node.Xattr(name: Array("system.posix_acl_access".utf8), value: storeTestBytes(count: 300, seed: 9)),
        ]
        n.content = [
            .chunk(storeTestBlobID(0x11), length: 524_288),
            .hole(length: 1 << 40),
            .chunk(storeTestBlobID(0x22), length: 1),
            .hole(length: 0),
            .slice(storeTestBlobID(0x23), offset: 300_000, length: 12_345),
        ]
        return n
    }

    /// One node of every kind, each field populated where the format stores it.
    private func everyKindTree() -> Tree {
        var nodes: [Node] = []
        nodes.append(fullFile([0x61, 0xff, 0xfe]))             // invalid UTF-8 name
        var block = Node(name: Array("blk".utf8), kind: .blockDevice)
        block.rdev = 0x0801; block.permissions = 0o660; block.mtime = Timespec(seconds: 5, nanoseconds: 6)
        nodes.append(block)
        var chr = Node(name: Array("chr".utf8), kind: .charDevice)
        chr.rdev = 0x0103; chr.permissions = 0o666; chr.user = "root"; chr.group = "root"
        nodes.append(chr)
        var dir = Node(name: Array("dir".utf8), kind: .directory)
        dir.permissions = 0o1777; dir.nlink = 7; dir.subtree = storeTestBlobID(0x33)
        dir.xattrs = [Node.Xattr(name: Array("system.posix_acl_default".utf8), value: [2, 0, 0, 0])]
        nodes.append(dir)
        var fifo = Node(name: Array("fifo".utf8), kind: .fifo)
        fifo.permissions = 0o600; fifo.ctime = Timespec(seconds: -86_400, nanoseconds: 0)
        nodes.append(fifo)
        var link = Node(name: Array("link".utf8), kind: .symlink)
        link.linkTarget = [0x2e, 0x2e, 0x2f, 0xff, 0x00, 0x01]   // raw bytes, even NUL
        link.size = 6; link.permissions = 0o777
        nodes.append(link)
        var sock = Node(name: Array("sock".utf8), kind: .socket)
        sock.permissions = 0o755; sock.inode = 42; sock.device = 43
        nodes.append(sock)
        var empty = Node(name: Array("zero".utf8), kind: .file)   // empty file: no extents
        empty.content = []
        nodes.append(empty)
        nodes.sort { $0.name.lexicographicallyPrecedes($1.name) }
        return Tree(nodes: nodes)
    }

    func testRoundTripWithEveryField() throws {
        let tree = everyKindTree()
        XCTAssertEqual(Set(tree.nodes.map(\.kind.rawValue)), Set(1...7), "every NodeKind is covered")
        let bytes = tree.encoded()
        XCTAssertEqual(Array(bytes.prefix(4)), Array("CFT1".utf8))
        let decoded = try Tree.decode(bytes, what: "tree")
        XCTAssertEqual(decoded.nodes.count, tree.nodes.count)
        for (a, b) in zip(decoded.nodes, tree.nodes) {
            XCTAssertEqual(a, b, "node \(b.nameDescription)")
        }
        XCTAssertEqual(decoded, tree)
        XCTAssertEqual(decoded.encoded(), bytes, "re-encoding is stable")
    }

    func testEmptyTree() throws {
        let bytes = Tree(nodes: []).encoded()
        XCTAssertEqual(bytes, Array("CFT1".utf8) + [0])
        XCTAssertEqual(try Tree.decode(bytes, what: "t").nodes, [])
    }

    func testNodeNamedFindsNodes() {
        let tree = everyKindTree()
        for n in tree.nodes {
            XCTAssertEqual(tree.node(named: n.name), n, n.nameDescription)
        }
        XCTAssertNil(tree.node(named: Array("missing".utf8)))
        XCTAssertNil(tree.node(named: Array("a".utf8)))
        XCTAssertNil(tree.node(named: Array("zzz".utf8)))
        XCTAssertNil(Tree(nodes: []).node(named: Array("x".utf8)))
        // Many nodes: the binary search must find every one of them.
        let big = Tree(nodes: (0..<1000).map { i in Node(name: Array(String(format4(i)).utf8), kind: .file) })
        for i in stride(from: 0, to: 1000, by: 7) {
            XCTAssertEqual(big.node(named: Array(format4(i).utf8))?.name, Array(format4(i).utf8))
        }
        XCTAssertNil(big.node(named: Array("1000".utf8)))
    }

    private func format4(_ i: Int) -> String {
        let s = String(i)
        return String(repeating: "0", count: 4 - s.count) + s
    }

    // MARK: - Hand-built nodes

    private func field(_ tag: UInt64, _ value: [UInt8]) -> [UInt8] {
        var w = ByteWriter()
        w.varint(tag)
        w.lengthPrefixed(value)
        return w.bytes
    }

    private func treeBytes(_ nodes: [[UInt8]]) -> [UInt8] {
        var w = ByteWriter()
        w.raw(Array("CFT1".utf8))
        w.varint(UInt64(nodes.count))
        for n in nodes { w.lengthPrefixed(n) }
        return w.bytes
    }

    func testDecodingSkipsUnknownFieldTags() throws {
        var original = Node(name: Array("f".utf8), kind: .file)
        original.permissions = 0o640
        original.uid = 7
        original.content = [.hole(length: 9)]
        let known = Tree.encode(original)
        // Unknown tags before, between and after the known fields, including a large tag and an empty value.
        let node = field(99, [1, 2, 3, 0xff]) + Array(known.prefix(3)) + field(1000, []) + Array(known.dropFirst(3))
            + field(99, storeTestBytes(count: 200, seed: 3)) + field(UInt64(1) << 40, [0])
        XCTAssertEqual(Array(known.prefix(3)), field(1, Array("f".utf8)), "the name field is the first 3 bytes")
        let tree = try Tree.decode(treeBytes([node]), what: "t")
        XCTAssertEqual(tree.nodes, [original])
    }

    func testMinimalNodeGetsDefaults() throws {
        let node = field(2, [6]) + field(1, Array("p".utf8))   // order of fields does not matter
        let n = try Tree.decode(treeBytes([node]), what: "t").nodes[0]
        XCTAssertEqual(n.name, Array("p".utf8))
        XCTAssertEqual(n.kind, .fifo)
        XCTAssertEqual(n.permissions, 0)
        XCTAssertNil(n.user)
        XCTAssertNil(n.subtree)
    }

    func testRejectsInvalidNames() {
        let badNames: [[UInt8]] = [[], [0x2e], [0x2e, 0x2e], Array("a/b".utf8), [0x2f], Array("../x".utf8),
                                   [0x61, 0x00, 0x62], [0x00]]
        for name in badNames {
            let node = field(1, name) + field(2, [1])
            assertStoreError(.corrupt, "name \(name)") { try Tree.decode(treeBytes([node]), what: "t") }
        }
        // "..." and ".x" are ordinary names.
        for name in [Array("...".utf8), Array(".x".utf8), [0xff]] {
            XCTAssertNoThrow(try Tree.decode(treeBytes([field(1, name) + field(2, [1])]), what: "t"))
        }
    }

    func testRejectsNodesWithoutNameOrKind() {
        assertStoreError(.corrupt) { try Tree.decode(treeBytes([field(2, [1])]), what: "t") }
        assertStoreError(.corrupt) { try Tree.decode(treeBytes([field(1, [0x61])]), what: "t") }
        assertStoreError(.corrupt) { try Tree.decode(treeBytes([[]]), what: "t") }
    }

    func testRejectsMalformedFieldValues() {
        let name = field(1, [0x61])
        let cases: [(String, [UInt8])] = [
            ("unknown kind 8", name + field(2, [8])),
            ("unknown kind 0", name + field(2, [0])),
            ("empty kind", name + field(2, [])),
            ("nanoseconds >= 1e9", name + field(2, [1]) + field(9, [0x00, 0x80, 0x94, 0xeb, 0xdc, 0x03])),
            ("uid > UInt32", name + field(2, [1]) + field(4, [0x80, 0x80, 0x80, 0x80, 0x10])),
            ("subtree of 31 bytes", name + field(2, [2]) + field(19, [UInt8](repeating: 1, count: 31))),
            ("unknown extent kind", name + field(2, [1]) + field(18, [1, 2, 5])),
            ("extent count too large", name + field(2, [1]) + field(18, [5, 1, 5])),
            ("truncated chunk extent", name + field(2, [1]) + field(18, [1, 0] + [UInt8](repeating: 1, count: 20))),
            ("empty slice", name + field(2, [1]) + field(18, [1, 2] + [UInt8](repeating: 1, count: 32) + [5, 0])),
            ("truncated slice", name + field(2, [1]) + field(18, [1, 2] + [UInt8](repeating: 1, count: 32) + [5])),
            ("xattr value truncated", name + field(2, [1]) + field(17, [1, 0x61, 5, 1])),
            ("field length past node end", name + [0x02, 0x05, 0x01]),
            ("truncated tag", name + [0x80]),
        ]
        for (label, node) in cases {
            assertStoreError(.corrupt, label) { try Tree.decode(treeBytes([node]), what: "t") }
        }
    }

    func testRejectsBadMagicTrailingBytesAndTruncation() {
        let good = everyKindTree().encoded()
        XCTAssertNoThrow(try Tree.decode(good, what: "t"))
        var badMagic = good
        badMagic[3] = UInt8(ascii: "2")
        let e = assertStoreError(.corrupt) { try Tree.decode(badMagic, what: "tree 1234") }
        XCTAssertTrue(e?.message.contains("tree 1234") ?? false)
        assertStoreError(.corrupt) { try Tree.decode(good + [0], what: "t") }
        assertStoreError(.corrupt) { try Tree.decode([], what: "t") }
        assertStoreError(.corrupt) { try Tree.decode(Array("CFT".utf8), what: "t") }
        // Node count larger than what follows.
        assertStoreError(.corrupt) { try Tree.decode(Array("CFT1".utf8) + [5], what: "t") }
        for cut in stride(from: 0, to: good.count, by: 13) {
            assertStoreError(.corrupt, "cut at \(cut)") { try Tree.decode(Array(good.prefix(cut)), what: "t") }
        }
    }

    // MARK: - Frozen sample

    /// A small tree with fixed values must encode to exactly these bytes (computed once from the
    /// FORMAT.md §8 description by an independent encoder). Any change to the tree format fails here.
    func testFrozenTreeEncoding() throws {
        var a = Node(name: Array("a".utf8), kind: .file)
        a.permissions = 0o644; a.uid = 1000; a.gid = 100; a.user = "ann"; a.group = "users"; a.size = 5
        a.mtime = Timespec(seconds: 1, nanoseconds: 2)
        a.atime = Timespec(seconds: -1, nanoseconds: 999_999_999)
        a.inode = 7; a.device = 8; a.nlink = 1
        a.xattrs = [Node.Xattr(name: Array("user.k".utf8), value: [0x00, 0xff])]
        a.content = [.chunk(storeTestBlobID(0x11), length: 3), .hole(length: 2)]
        var d = Node(name: Array("d".utf8), kind: .directory)
        d.permissions = 0o1777; d.nlink = 2
        d.mtime = Timespec(seconds: -2, nanoseconds: 500)
        d.subtree = storeTestBlobID(0x44)
        var l = Node(name: Array("l".utf8), kind: .symlink)
        l.permissions = 0o777; l.size = 1; l.linkTarget = Array("a".utf8)
        let tree = Tree(nodes: [a, d, l])

        let golden = "43465431" + "03"
            // node a (0x6c bytes): name, kind 1, perms 0644, uid 1000, gid 100, user, group, size 5,
            // mtime (1, 2), atime (-1, 999999999), ctime (0, 0), inode 7, device 8, nlink 1, xattr, content
            + "6c" + "010161" + "020101" + "0302a403" + "0402e807" + "050164" + "0603616e6e" + "07057573657273"
            + "080105" + "09020202" + "0a0601ff93ebdc03" + "0b020000" + "0c0107" + "0d0108" + "0e0101"
            + "110a06757365722e6b0200ff"
            + "1225" + "02" + "00" + String(repeating: "11", count: 32) + "03" + "01" + "02"
            // node d (0x4b bytes): ... mtime (-2, 500), nlink 2, subtree
            + "4b" + "010164" + "020102" + "0302ff07" + "040100" + "050100" + "080100" + "090303f403" + "0a020000"
            + "0b020000" + "0c0100" + "0d0100" + "0e0102" + "1320" + String(repeating: "44", count: 32)
            // node l (0x2b bytes): ... size 1, link target "a"
            + "2b" + "01016c" + "020103" + "0302ff03" + "040100" + "050100" + "080101" + "09020000" + "0a020000"
            + "0b020000" + "0c0100" + "0d0100" + "0e0101" + "100161"
        XCTAssertEqual(Hex.encode(tree.encoded()), golden)
        XCTAssertEqual(try Tree.decode(storeTestHex(golden), what: "golden"), tree)
    }

    /// A bundle slice (kind 2): blob id, offset, length, as FORMAT.md §8 gives them.
    func testFrozenSliceExtent() throws {
        var f = Node(name: Array("s".utf8), kind: .file)
        f.size = 5
        f.content = [.slice(storeTestBlobID(0x55), offset: 300, length: 5)]
        let bytes = Tree(nodes: [f]).encoded()
        let extent = "1225" + "01" + "02" + String(repeating: "55", count: 32) + "ac02" + "05"
        XCTAssertTrue(Hex.encode(bytes).hasSuffix(extent), Hex.encode(bytes))
        XCTAssertEqual(try Tree.decode(bytes, what: "t").nodes.first?.content, f.content)
    }
}
