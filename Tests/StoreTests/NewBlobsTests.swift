import Glibc
import XCTest
@testable import Store

/// The shared "known? then store" state of a backup's reading threads: a blob one thread seals
/// inline (straight from its read window) is counted before the decision's lock is released,
/// so an index flush that another thread starts meanwhile waits for it instead of writing an
/// index without it and forgetting it.
final class NewBlobsTests: XCTestCase {
    private var dir: StoreTestDirectory!
    override func setUp() { dir = StoreTestDirectory("coffer-newblobs") }
    override func tearDown() { dir.remove() }

    func testAFlushDuringAnInlineStoreWaitsForIt() throws {
        let backend = LocalBackend(path: dir.appending("repo"))
        let passphrase = Array("new blobs".utf8)
        _ = try Repository.create(backend: backend, passphrase: passphrase, kdf: .scrypt(memoryBytes: 1 << 20))
        let repo = try Repository.open(backend: backend, passphrase: passphrase, cacheDirectory: dir.appending("cache"))
        let sealer = try Sealer(writer: repo.writer)
        let packer = Packer(backend: repo.backend, sealer: sealer, targetSize: repo.config.packSize, naming: repo.config.packNaming)
        let uploader = BlobUploader(packer: packer, sealer: sealer, workers: 1)
        defer { uploader.shutdown() }
        let newBlobs = NewBlobs(catalog: repo.catalog, uploader: uploader, flushBlobs: 1000, flushBytes: 1 << 30)

        let data = storeTestBytes(count: 100_000, seed: 7)
        let id = data.withUnsafeBytes { repo.writer.blobID($0) }
        // Signalled when the flush waits for the blob in flight, or (had the blob not been
        // counted) when it is over without it.
        let flushWaitsOrIsDone = DispatchSemaphore(value: 0)
        let flushDone = DispatchSemaphore(value: 0)
        uploader.drainWillWait = { flushWaitsOrIsDone.signal() }
        final class Outcome: @unchecked Sendable { var indexed: [BlobID] = []; var error: Error? }
        let outcome = Outcome()   // written by the flushing thread before flushDone is signalled
        // The moment the inline store has decided (lock released) and not yet packed the blob:
        // another thread flushes; this one goes on once that flush waits for it (or is over).
        uploader.inlineWillStore = { _ in
            DispatchQueue.global().async {
                do {
                    try newBlobs.flush {
                        var packs = try uploader.drain()
                        if let last = try packer.sealCurrent() { packs.append(last) }
                        try packer.waitPublished()
                        outcome.indexed = packs.flatMap { $0.entries.map(\.id) }
                        return 0
                    }
                } catch { outcome.error = error }
                flushWaitsOrIsDone.signal()
                flushDone.signal()
            }
            flushWaitsOrIsDone.wait()
        }
        let stored = try data.withUnsafeBytes {
            try newBlobs.storeIfNewInline(.data, id, $0, compressor: uploader.makeCompressor())
        }
        XCTAssertTrue(stored)
        flushDone.wait()
        XCTAssertNil(outcome.error)
        XCTAssertEqual(outcome.indexed, [id], "the flush waited for the blob and sealed it into the pack it indexes")
        XCTAssertEqual(uploader.inlineCount, 1)
    }
}
