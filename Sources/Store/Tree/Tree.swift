/// A directory: nodes sorted bytewise by name, stored as a tree blob (type 2).
///
/// Encoding (see docs/FORMAT.md): "CFT1", varint node count, then per node a varint
/// length followed by that many bytes of fields; each field is varint tag, varint length,
/// value. Unknown tags are skipped, so later versions can add fields.
public struct Tree: Sendable, Equatable {
    public var nodes: [Node]
    public init(nodes: [Node]) { self.nodes = nodes }

    static let magic: [UInt8] = Array("CFT1".utf8)

    enum Tag: UInt64 {
        case name = 1, kind, permissions, uid, gid, user, group, size, mtime, atime, ctime
        case inode, device, nlink, rdev, linkTarget, xattr, content, subtree
    }

    public func node(named name: [UInt8]) -> Node? {
        var lo = 0, hi = nodes.count - 1
        while lo <= hi {
            let mid = (lo + hi) / 2
            if nodes[mid].name == name { return nodes[mid] }
            if nodes[mid].name.lexicographicallyPrecedes(name) { lo = mid + 1 } else { hi = mid - 1 }
        }
        return nodes.first { $0.name == name }
    }

    public func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: 64 + nodes.count * 128)
        w.raw(Tree.magic)
        w.varint(UInt64(nodes.count))
        var scratch = ByteWriter(capacity: 256)
        for n in nodes {
            scratch.reset()
            Tree.encode(n, into: &scratch)
            w.lengthPrefixed(scratch.bytes)
        }
        return w.bytes
    }

    static func encode(_ n: Node) -> [UInt8] {
        var w = ByteWriter(capacity: 128 + n.content.count * 48)
        encode(n, into: &w)
        return w.bytes
    }

    /// Appends a node's fields to `f`. Each field's length is computed up front, so the bytes
    /// go straight into `f` (no buffer per field).
    static func encode(_ n: Node, into f: inout ByteWriter) {
        let size = ByteWriter.varintSize
        func header(_ t: Tag, _ length: Int) { f.varint(t.rawValue); f.varint(UInt64(length)) }
        func number(_ t: Tag, _ v: UInt64) { header(t, size(v)); f.varint(v) }
        func bytes(_ t: Tag, _ b: [UInt8]) { header(t, b.count); f.raw(b) }
        func time(_ t: Tag, _ ts: Timespec) {
            let ns = UInt64(UInt32(bitPattern: ts.nanoseconds))
            header(t, ByteWriter.svarintSize(ts.seconds) + size(ns))
            f.svarint(ts.seconds); f.varint(ns)
        }
        bytes(.name, n.name)
        header(.kind, 1); f.u8(n.kind.rawValue)
        number(.permissions, UInt64(n.permissions))
        number(.uid, UInt64(n.uid))
        number(.gid, UInt64(n.gid))
        if let u = n.user { bytes(.user, Array(u.utf8)) }
        if let g = n.group { bytes(.group, Array(g.utf8)) }
        number(.size, UInt64(n.size))
        time(.mtime, n.mtime)
        time(.atime, n.atime)
        time(.ctime, n.ctime)
        number(.inode, n.inode)
        number(.device, n.device)
        number(.nlink, n.nlink)
        if n.rdev != 0 { number(.rdev, n.rdev) }
        if n.kind == .symlink { bytes(.linkTarget, n.linkTarget) }
        for x in n.xattrs {
            header(.xattr, size(UInt64(x.name.count)) + x.name.count + size(UInt64(x.value.count)) + x.value.count)
            f.lengthPrefixed(x.name); f.lengthPrefixed(x.value)
        }
        if n.kind == .file {
            var length = size(UInt64(n.content.count))
            for e in n.content {
                switch e {
                case .chunk(_, let len): length += 1 + 32 + size(UInt64(len))
                case .hole(let len): length += 1 + size(UInt64(len))
                case .slice(_, let off, let len): length += 1 + 32 + size(UInt64(off)) + size(UInt64(len))
                }
            }
            header(.content, length)
            f.varint(UInt64(n.content.count))
            for e in n.content {
                switch e {
                case .chunk(let id, let len): f.u8(0); f.blobID(id); f.varint(UInt64(len))
                case .hole(let len): f.u8(1); f.varint(UInt64(len))
                case .slice(let id, let off, let len): f.u8(2); f.blobID(id); f.varint(UInt64(off)); f.varint(UInt64(len))
                }
            }
        }
        if let s = n.subtree { header(.subtree, 32); f.blobID(s) }
    }

    /// A content field's value: varint count, then per extent its kind and fields.
    static func decodeExtents(_ v: inout ByteReader, what: String) throws -> [Node.Extent] {
        let c = try v.int(max: v.remaining)
        var content: [Node.Extent] = []
        content.reserveCapacity(c)
        for _ in 0..<c {
            switch try v.u8() {
            case 0: content.append(.chunk(try v.blobID(), length: Int64(try v.int(max: Int.max))))
            case 1: content.append(.hole(length: Int64(try v.int(max: Int.max))))
            case 2:
                let id = try v.blobID()
                let off = Int64(try v.int(max: Int.max)), len = Int64(try v.int(max: Int.max))
                guard len > 0, off <= Int64.max - len else { throw StoreError(.corrupt, "\(what): bad slice extent") }
                content.append(.slice(id, offset: off, length: len))
            default: throw StoreError(.corrupt, "\(what): unknown extent kind")
            }
        }
        return content
    }

    /// Only the content field of an encoded node (the others are skipped, not decoded).
    static func decodeContent(_ bytes: [UInt8], what: String) throws -> [Node.Extent] {
        var r = ByteReader(bytes, what: what)
        var content: [Node.Extent] = []
        while !r.isAtEnd {
            let tag = try r.varint()
            var v = try r.lengthPrefixedReader()
            if tag == Tag.content.rawValue { content = try decodeExtents(&v, what: what) }
        }
        return content
    }

    public static func decode(_ bytes: [UInt8], what: String) throws -> Tree {
        var r = ByteReader(bytes, what: what)
        guard try r.raw(4) == magic else { throw StoreError(.corrupt, "\(what): bad tree magic") }
        let count = try r.int(max: r.remaining)
        var nodes: [Node] = []
        nodes.reserveCapacity(count)
        for _ in 0..<count {
            var nr = try r.lengthPrefixedReader()
            nodes.append(try decodeNode(&nr, what: what))
        }
        guard r.isAtEnd else { throw StoreError(.corrupt, "\(what): trailing bytes") }
        return Tree(nodes: nodes)
    }

    static func decodeNode(_ bytes: [UInt8], what: String) throws -> Node {
        var r = ByteReader(bytes, what: what)
        return try decodeNode(&r, what: what)
    }

    /// Decodes the node `r` holds (to its end); field values are read in place, not copied.
    static func decodeNode(_ r: inout ByteReader, what: String) throws -> Node {
        var n = Node(name: [], kind: .file)
        var sawName = false, sawKind = false
        while !r.isAtEnd {
            let tag = try r.varint()
            var v = try r.lengthPrefixedReader()
            func time() throws -> Timespec {
                let s = try v.svarint()
                let ns = try v.varint()
                guard ns < 1_000_000_000 else { throw StoreError(.corrupt, "\(what): bad nanoseconds") }
                return Timespec(seconds: s, nanoseconds: Int32(ns))
            }
            func u32() throws -> UInt32 {
                let x = try v.varint()
                guard x <= UInt64(UInt32.max) else { throw StoreError(.corrupt, "\(what): value out of range") }
                return UInt32(x)
            }
            switch Tag(rawValue: tag) {
            case .name: n.name = try v.raw(v.remaining); sawName = true
            case .kind:
                guard let k = NodeKind(rawValue: try v.u8()) else { throw StoreError(.corrupt, "\(what): unknown node kind") }
                n.kind = k; sawKind = true
            case .permissions: n.permissions = try u32()
            case .uid: n.uid = try u32()
            case .gid: n.gid = try u32()
            case .user: n.user = String(decoding: try v.raw(v.remaining), as: UTF8.self)
            case .group: n.group = String(decoding: try v.raw(v.remaining), as: UTF8.self)
            case .size: n.size = Int64(try v.int(max: Int.max))
            case .mtime: n.mtime = try time()
            case .atime: n.atime = try time()
            case .ctime: n.ctime = try time()
            case .inode: n.inode = try v.varint()
            case .device: n.device = try v.varint()
            case .nlink: n.nlink = try v.varint()
            case .rdev: n.rdev = try v.varint()
            case .linkTarget: n.linkTarget = try v.raw(v.remaining)
            case .xattr: n.xattrs.append(Node.Xattr(name: try v.lengthPrefixed(), value: try v.lengthPrefixed()))
            case .content: n.content = try decodeExtents(&v, what: what)
            case .subtree: n.subtree = try v.blobID()
            case nil: break   // a field from a newer version: skipped
            }
        }
        guard sawName, sawKind, !n.name.isEmpty else { throw StoreError(.corrupt, "\(what): node without name or kind") }
        // A name is one path component: never empty, ".", "..", or containing "/" or NUL (no path traversal on restore).
        guard n.name != [0x2e], n.name != [0x2e, 0x2e], !n.name.contains(0x2f), !n.name.contains(0) else {
            throw StoreError(.corrupt, "\(what): invalid entry name \(RawPath.escape(n.name))")
        }
        return n
    }
}
