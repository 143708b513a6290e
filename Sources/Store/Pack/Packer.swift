import Crypto
import Dispatch

/// Assembles encrypted blobs into pack files of about `targetSize` bytes.
///
/// Blobs are appended to a staging file (in the backend's staging directory) as they
/// arrive, so memory does not grow with the pack size. A full pack is sealed outside
/// the append lock: header and trailer are appended and its name is known at once: the
/// SHA-256 of header and trailer (`naming` `.header`), or of the whole file (`.wholeFile`,
/// computed as the blobs are appended, so the staged file is never read back). The
/// fsync and the publication under that name happen in order on a background queue, so
/// the workers go on compressing and encrypting while the disk writes (at most
/// `maxUnpublished` sealed packs wait). `flush()` returns only when every pack sealed so
/// far is durable and published: callers write an index naming packs only after it.
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
        let hasher = SHA256Hasher()        // of what names the pack, in file order
        init(path: RawPath, file: FileHandle) { self.path = path; self.file = file }
    }

    private let backend: AppendOnlyBackend
    private let sealer: Sealer
    private let targetSize: Int
    private let lock = Mutex()
    private var current: OpenPack?
    private var allStaged: [RawPath] = []
    /// Sealed packs waiting for fsync + publication, and the first error doing that.
    private let publishing = Condition()
    private var unpublished = 0
    private var publishError: Error?
    private let publisher = DispatchQueue(label: "coffer.packer.publish")
    private let maxUnpublished: Int
    private let naming: PackNaming

    public init(backend: AppendOnlyBackend, sealer: Sealer, targetSize: Int, naming: PackNaming, maxUnpublished: Int = 16) {
        self.backend = backend
        self.naming = naming
        self.sealer = sealer
        self.targetSize = targetSize
        self.maxUnpublished = max(1, maxUnpublished)
    }

    /// Appends one blob envelope; returns a finished pack when this blob filled one (sealed and
    /// named; durable and published once `flush()` returns). Throws an earlier pack's
    /// publication error.
    public func add(type: BlobType, id: BlobID, rawLength: Int, envelope: [UInt8]) throws -> Finished? {
        if let e = publishing.withLock({ publishError }) { throw e }
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
            if naming == .wholeFile { p.hasher.update(envelope) }
            p.entries.append(PackEntry(type: type, id: id, offset: p.offset, length: envelope.count, rawLength: rawLength))
            p.offset += envelope.count
            guard p.offset >= targetSize else { return nil }
            current = nil
            return p
        }
        return try full.map(seal)
    }

    /// Seals the partially filled pack, if any, and waits until every sealed pack is durable
    /// and published. Throws the first publication error.
    public func flush() throws -> Finished? {
        let last = try sealCurrent()
        try waitPublished()
        return last
    }

    /// Seals the partially filled pack, if any, without waiting for its publication.
    public func sealCurrent() throws -> Finished? {
        let p: OpenPack? = lock.withLock { defer { current = nil }; return current }
        return try p.map(seal)
    }

    /// Waits until every pack sealed so far is durable and published; throws the first
    /// publication error.
    public func waitPublished() throws {
        try publishing.withLock {
            while unpublished > 0 { publishing.wait() }
            if let e = publishError { throw e }
        }
    }

    /// Removes staged files of packs never published (after an error), once no publication
    /// is running.
    public func abandon() {
        publishing.withLock {
            while unpublished > 0 { publishing.wait() }
        }
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
        } catch let e as PosixError {
            p.file.close()
            throw StoreError(.io, e.description)
        }
        // The name: SHA-256 of the header envelope and trailer (after the blobs, with .wholeFile).
        p.hasher.update(header)
        p.hasher.update(trailer)
        let id = Hex.encode(p.hasher.finalize())
        let name = try ObjectName(.packs, id)
        do {
            try publishing.withLock {
                while unpublished >= maxUnpublished && publishError == nil { publishing.wait() }
                if let e = publishError { throw e }
                unpublished += 1
            }
        } catch {
            p.file.close()   // its staged file stays listed for abandon()
            throw error
        }
        publisher.async { [self] in
            let error = publish(p, as: name)
            publishing.withLock {
                if let error, publishError == nil { publishError = error }
                unpublished -= 1
                publishing.broadcast()
            }
        }
        return Finished(id: id, entries: p.entries, size: p.offset + header.count + trailer.count)
    }

    /// fsync, close and publish one sealed pack (on the publisher queue); nil on success.
    private func publish(_ p: OpenPack, as name: ObjectName) -> Error? {
        defer { p.file.close() }
        do {
            try p.file.sync()
        } catch let e as PosixError {
            return StoreError(.io, e.description)
        } catch { return error }
        do {
            try backend.putFile(name, from: p.path)
        } catch BackendError.alreadyExists {
            // Same bytes under the same hash: already stored.
        } catch let e as BackendError {
            return StoreError(.io, e.description)
        } catch { return error }
        lock.withLock { allStaged.removeAll { $0 == p.path } }
        return nil
    }
}
