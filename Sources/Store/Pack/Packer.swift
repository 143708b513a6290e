import Crypto

/// Assembles encrypted blobs into pack files of about `targetSize` bytes.
///
/// Blobs are appended to a staging file (in the backend's staging directory) as they
/// arrive, so memory does not grow with the pack size. A full pack is sealed outside
/// the append lock: header, trailer, fsync, then published under its SHA-256, which is
/// computed as the blobs are appended (so the staged file is never read back).
/// Thread-safe.
public final class Packer: @unchecked Sendable {
    public struct Finished: Sendable {
        public let id: String           // hex SHA-256 of the pack
        public let entries: [PackEntry]
        public let size: Int
    }

    private final class OpenPack {
        let path: RawPath
        let file: FileHandle
        var entries: [PackEntry] = []
        var offset = 0
        let hasher = SHA256Hasher()        // of everything written so far, in file order
        init(path: RawPath, file: FileHandle) { self.path = path; self.file = file }
    }

    private let backend: AppendOnlyBackend
    private let sealer: Sealer
    private let targetSize: Int
    private let lock = Mutex()
    private var current: OpenPack?
    private var allStaged: [RawPath] = []

    public init(backend: AppendOnlyBackend, sealer: Sealer, targetSize: Int) {
        self.backend = backend
        self.sealer = sealer
        self.targetSize = targetSize
    }

    /// Appends one blob envelope; returns a finished pack when this blob filled one.
    public func add(type: BlobType, id: BlobID, rawLength: Int, envelope: [UInt8]) throws -> Finished? {
        let full: OpenPack? = try lock.withLock {
            if current == nil {
                let path = backend.stagingDirectory.appending(LocalBackend.temporaryName() + ".pack")
                do {
                    current = OpenPack(path: path, file: try FileHandle.create(path, permissions: 0o600))
                    allStaged.append(path)
                } catch let e as PosixError { throw StoreError(.io, e.description) }
            }
            let p = current!
            do { try envelope.withUnsafeBytes { try p.file.write($0) } } catch let e as PosixError {
                // Part of the envelope may be on disk: this pack can never be sealed consistently.
                // Drop it (its staged file is removed by abandon()); later blobs start a new pack.
                p.file.close()
                current = nil
                throw StoreError(.io, e.description)
            }
            p.hasher.update(envelope)
            p.entries.append(PackEntry(type: type, id: id, offset: p.offset, length: envelope.count, rawLength: rawLength))
            p.offset += envelope.count
            guard p.offset >= targetSize else { return nil }
            current = nil
            return p
        }
        return try full.map(seal)
    }

    /// Seals the partially filled pack, if any.
    public func flush() throws -> Finished? {
        let p: OpenPack? = lock.withLock { defer { current = nil }; return current }
        return try p.map(seal)
    }

    /// Removes staged files of packs never published (after an error).
    public func abandon() {
        lock.withLock {
            for p in allStaged { try? Posix.remove(p) }
            allStaged.removeAll()
            current = nil
        }
    }

    private func seal(_ p: OpenPack) throws -> Finished {
        let header = try sealer.seal(PackFormat.encodeHeader(p.entries), context: EnvelopeContext.packHeader)
        let n = UInt32(header.count)
        let trailer: [UInt8] = [UInt8(n >> 24), UInt8(n >> 16 & 0xff), UInt8(n >> 8 & 0xff), UInt8(n & 0xff)] + PackFormat.trailerMagic
        do {
            try header.withUnsafeBytes { try p.file.write($0) }
            try trailer.withUnsafeBytes { try p.file.write($0) }
            try p.file.sync()
            p.file.close()
        } catch let e as PosixError {
            throw StoreError(.io, e.description)
        }
        // The name is the SHA-256 of the whole file.
        p.hasher.update(header)
        p.hasher.update(trailer)
        let id = Hex.encode(p.hasher.finalize())
        do {
            try backend.putFile(try ObjectName(.packs, id), from: p.path)
        } catch BackendError.alreadyExists {
            // Same bytes under the same hash: already stored.
        } catch let e as BackendError {
            throw StoreError(.io, e.description)
        }
        lock.withLock { allStaged.removeAll { $0 == p.path } }
        return Finished(id: id, entries: p.entries, size: p.offset + header.count + trailer.count)
    }
}
