import Crypto
import Foundation
@testable import Store
import XCTest

/// Key slots (docs/FORMAT.md §3) and Repository.create/open.
final class KeyRepositoryTests: XCTestCase {
    private var dir: StoreTestDirectory!
    /// 1 MiB of scrypt memory: N = 1024, r = 8, p = 2 (fast).
    private let cheapKDF = { KDFParameters.scrypt(memoryBytes: 1 << 20) }

    override func setUp() { dir = StoreTestDirectory("coffer-keys") }
    override func tearDown() { dir.remove() }

    private var cache: RawPath { dir.appending("cache") }

    private func makeRepository(_ passphrase: String = "correct horse") throws -> (LocalBackend, RepositoryConfig) {
        let backend = LocalBackend(path: dir.appending("repo"))
        let config = try Repository.create(backend: backend, passphrase: Array(passphrase.utf8), kdf: cheapKDF(), label: "test")
        return (backend, config)
    }

    // MARK: - KeyFile

    func testScryptParametersFromMemory() {
        let cheap = KDFParameters.scrypt(memoryBytes: 1 << 20)
        XCTAssertEqual(cheap.name, "scrypt")
        XCTAssertEqual(cheap.n, 1024)
        XCTAssertEqual(cheap.r, 8)
        XCTAssertEqual(Data(base64Encoded: cheap.salt)?.count, 32)
        XCTAssertNotEqual(cheap.salt, KDFParameters.scrypt(memoryBytes: 1 << 20).salt, "fresh salt each time")
        // 128·r·N never exceeds the budget and is the largest power of two that fits.
        for mb in [1, 3, 16, 64, 128, 1000] {
            let p = KDFParameters.scrypt(memoryBytes: mb << 20)
            XCTAssertLessThanOrEqual(128 * p.r! * p.n!, UInt64(mb << 20), "\(mb) MiB")
            XCTAssertGreaterThan(128 * p.r! * p.n! * 2, UInt64(mb << 20), "\(mb) MiB")
        }
        XCTAssertEqual(KDFParameters.scrypt(memoryBytes: 128 << 20).n, 1 << 17)
    }

    func testPassphraseSlotRoundTrip() throws {
        let master = SecretBytes(StoreTestKeys.masterBytes)
        let pass = Array("correct horse battery staple".utf8)
        let slot = try KeyFile.passphrase(pass, master: master, repositoryID: StoreTestKeys.repositoryID,
                                          kdf: cheapKDF(), label: "laptop")
        XCTAssertEqual(slot.version, 1)
        XCTAssertEqual(slot.kind, "passphrase")
        XCTAssertEqual(slot.repository, Hex.encode(StoreTestKeys.repositoryID))
        XCTAssertEqual(slot.wrap, "aes256-kw")
        XCTAssertEqual(slot.label, "laptop")
        XCTAssertNotNil(Timestamp(rfc3339: slot.created))
        XCTAssertEqual(slot.wrappedKey.flatMap { Data(base64Encoded: $0) }?.count, 72)

        let bytes = try slot.encoded()
        let json = String(decoding: bytes, as: UTF8.self)
        for key in ["\"wrapped_key\"", "\"kdf\"", "\"salt\"", "\"repository\"", "\"hostname\"", "\"username\""] {
            XCTAssertTrue(json.contains(key), "\(key) in \(json)")
        }
        let decoded = try KeyFile.decode(bytes, name: "keys/x")
        XCTAssertEqual(decoded.kdf, slot.kdf)
        let unlocked = try XCTUnwrap(try decoded.unlock(pass))
        XCTAssertEqual(unlocked.copyBytes(), StoreTestKeys.masterBytes)

        // Independently of KeyFile: KEK = scrypt(passphrase, salt, N, r, p, 32), AES-KW unwrap gives the master.
        let kdf = try XCTUnwrap(decoded.kdf)
        let kek = try Scrypt.deriveKey(password: pass, salt: Array(Data(base64Encoded: kdf.salt)!), n: try XCTUnwrap(kdf.n),
                                       r: try XCTUnwrap(kdf.r), p: kdf.p, length: 32)
        XCTAssertEqual(try AESKeyWrap.unwrap(kek: kek, wrapped: Array(Data(base64Encoded: decoded.wrappedKey!)!)),
                       StoreTestKeys.masterBytes)
    }

    /// New slots use Argon2id: "kdf": {"name": "argon2id", "t", "m" (KiB), "p", "salt"}, and
    /// KEK = Argon2id(passphrase, salt, t, m, p, 32) unwraps the master (FORMAT.md §3).
    func testArgon2idSlotLayoutAndIndependentUnwrap() throws {
        let pass = Array("correct horse".utf8)
        let slot = try KeyFile.passphrase(pass, master: SecretBytes(StoreTestKeys.masterBytes),
                                          repositoryID: StoreTestKeys.repositoryID, kdf: .argon2id(memoryBytes: 1 << 20), label: nil)
        let json = try JSONSerialization.jsonObject(with: Data(try slot.encoded())) as? [String: Any]
        let kdfJSON = try XCTUnwrap(json?["kdf"] as? [String: Any])
        XCTAssertEqual(kdfJSON["name"] as? String, "argon2id")
        XCTAssertEqual(kdfJSON["t"] as? Int, 3)
        XCTAssertEqual(kdfJSON["m"] as? Int, 1024)
        XCTAssertEqual(kdfJSON["p"] as? Int, 1)
        XCTAssertNil(kdfJSON["n"])
        XCTAssertEqual(Data(base64Encoded: kdfJSON["salt"] as? String ?? "")?.count, 16)

        let decoded = try KeyFile.decode(try slot.encoded(), name: "keys/x")
        XCTAssertEqual(try XCTUnwrap(try decoded.unlock(pass)).copyBytes(), StoreTestKeys.masterBytes)
        XCTAssertNil(try decoded.unlock(Array("correct horse ".utf8)))
        let kdf = try XCTUnwrap(decoded.kdf)
        let kek = try Argon2id.deriveKey(password: pass, salt: Array(Data(base64Encoded: kdf.salt)!), iterations: 3,
                                         memoryKiB: 1024, lanes: 1, length: 32)
        XCTAssertEqual(try AESKeyWrap.unwrap(kek: kek, wrapped: Array(Data(base64Encoded: decoded.wrappedKey!)!)),
                       StoreTestKeys.masterBytes)

        var hostile = decoded; hostile.kdf?.m = 8 << 20   // 8 GiB
        assertStoreError(.corrupt) { try hostile.unlock(pass) }
        var noPasses = decoded; noPasses.kdf?.t = nil
        assertStoreError(.corrupt) { try noPasses.unlock(pass) }
    }

    /// Slots made before the one-lane default (p = 4, a 32-byte salt: computed by libargon2)
    /// still unlock, and a replacement for one keeps its cost and salt length.
    func testFourLaneArgon2idSlotStillUnlocks() throws {
        let pass = Array("old slot".utf8)
        let salt = Data((0..<32).map { UInt8($0) }).base64EncodedString()
        let old = KDFParameters(name: "argon2id", t: 1, m: 256, p: 4, salt: salt)
        let slot = try KeyFile.passphrase(pass, master: SecretBytes(StoreTestKeys.masterBytes),
                                          repositoryID: StoreTestKeys.repositoryID, kdf: old, label: nil)
        let decoded = try KeyFile.decode(try slot.encoded(), name: "keys/old")
        XCTAssertEqual(try XCTUnwrap(try decoded.unlock(pass)).copyBytes(), StoreTestKeys.masterBytes)
        XCTAssertNil(try decoded.unlock(Array("old slot!".utf8)))
        let kek = try Argon2id.deriveKey(password: pass, salt: (0..<32).map { UInt8($0) }, iterations: 1, memoryKiB: 256,
                                         lanes: 4, length: 32)
        XCTAssertEqual(try AESKeyWrap.unwrap(kek: kek, wrapped: Array(Data(base64Encoded: decoded.wrappedKey!)!)),
                       StoreTestKeys.masterBytes)
        let fresh = old.withFreshSalt()
        XCTAssertEqual(fresh.p, 4)
        XCTAssertEqual(Data(base64Encoded: fresh.salt)?.count, 32)
        XCTAssertNotEqual(fresh.salt, old.salt)
    }

    func testWrongPassphraseReturnsNil() throws {
        let slot = try KeyFile.passphrase(Array("right".utf8), master: SecretBytes(StoreTestKeys.masterBytes),
                                          repositoryID: StoreTestKeys.repositoryID, kdf: cheapKDF(), label: nil)
        XCTAssertNil(try slot.unlock(Array("wrong".utf8)))
        XCTAssertNil(try slot.unlock([]))
        XCTAssertNil(try slot.unlock(Array("right ".utf8)))
        XCTAssertNotNil(try slot.unlock(Array("right".utf8)))
    }

    func testSlotsOfTheSamePassphraseDiffer() throws {
        let master = SecretBytes(StoreTestKeys.masterBytes)
        let a = try KeyFile.passphrase([1], master: master, repositoryID: StoreTestKeys.repositoryID, kdf: cheapKDF(), label: nil)
        let b = try KeyFile.passphrase([1], master: master, repositoryID: StoreTestKeys.repositoryID, kdf: cheapKDF(), label: nil)
        XCTAssertNotEqual(a.kdf?.salt, b.kdf?.salt)
        XCTAssertNotEqual(a.wrappedKey, b.wrappedKey)
    }

    func testUnknownKindsAndBrokenSlotsDoNotUnlock() throws {
        var slot = try KeyFile.passphrase([1], master: SecretBytes(StoreTestKeys.masterBytes),
                                          repositoryID: StoreTestKeys.repositoryID, kdf: cheapKDF(), label: nil)
        var pgp = slot; pgp.kind = "openpgp"
        XCTAssertNil(try pgp.unlock([1]))
        var noWrap = slot; noWrap.wrap = "rsa"
        XCTAssertNil(try noWrap.unlock([1]))
        var badKDF = slot; badKDF.kdf?.n = 1000
        assertStoreError(.corrupt) { try badKDF.unlock([1]) }
        var hugeKDF = slot; hugeKDF.kdf?.n = 1 << 30
        assertStoreError(.corrupt) { try hugeKDF.unlock([1]) }
        var argon = slot; argon.kdf?.name = "argon2id"   // scrypt's fields under Argon2id's name
        assertStoreError(.corrupt) { try argon.unlock([1]) }
        var bcrypt = slot; bcrypt.kdf?.name = "bcrypt"
        assertStoreError(.unsupported) { try bcrypt.unlock([1]) }
        slot.wrappedKey = Data([UInt8](repeating: 0, count: 72)).base64EncodedString()
        XCTAssertNil(try slot.unlock([1]), "a damaged wrapped key fails the RFC 3394 integrity check")
        assertStoreError(.corrupt) { try KeyFile.decode(Array("{\"kind\": 3}".utf8), name: "keys/x") }
    }

    // MARK: - Repository.create / open

    func testCreateAndOpen() throws {
        let (backend, config) = try makeRepository()
        XCTAssertEqual(try Repository.readConfig(backend).id, config.id)
        let keySlots = try backend.list(.keys)
        XCTAssertEqual(keySlots.count, 1)
        for info in keySlots {
            XCTAssertEqual(Hex.encode(SHA256.hash(try backend.get(info.name))), info.name.id, "slot name = SHA-256 of the file")
        }
        let repo = try Repository.open(backend: backend, passphrase: Array("correct horse".utf8), cacheDirectory: cache)
        XCTAssertEqual(repo.config.id, config.id)
        XCTAssertEqual(try repo.keys.repositoryID, config.idBytes)
        let catalogPath = cache.appending(config.id).appending("catalog.sqlite")
        XCTAssertEqual(repo.catalog.path, catalogPath.description)
        XCTAssertEqual(try Posix.lstat(catalogPath).permissions & 0o777, 0o600)
        // Two opens derive the same keys.
        let again = try Repository.open(backend: backend, passphrase: Array("correct horse".utf8), cacheDirectory: cache)
        XCTAssertEqual(try again.keys.master.copyBytes(), try repo.keys.master.copyBytes())
        XCTAssertEqual(try again.keys.blobID([1, 2, 3]), try repo.keys.blobID([1, 2, 3]))
    }

    func testCreateRefusesAnExistingRepository() throws {
        let (backend, _) = try makeRepository()
        assertStoreError(.repositoryExists) {
            try Repository.create(backend: backend, passphrase: [1], kdf: cheapKDF())
        }
    }

    func testOpenWithAWrongPassphraseThrowsWrongPassword() throws {
        let (backend, _) = try makeRepository()
        let e = assertStoreError(.wrongPassword) {
            try Repository.open(backend: backend, passphrase: Array("incorrect horse".utf8), cacheDirectory: cache)
        }
        XCTAssertTrue(e?.message.contains("wrong passphrase") ?? false, e?.message ?? "")
    }

    func testMissingConfigIsRepositoryNotFound() throws {
        let nowhere = LocalBackend(path: dir.appending("nowhere"))
        assertStoreError(.repositoryNotFound) { try Repository.open(backend: nowhere, passphrase: [1], cacheDirectory: cache) }
        let empty = LocalBackend(path: dir.appending("empty"))
        try empty.create()
        assertStoreError(.repositoryNotFound) { try Repository.open(backend: empty, passphrase: [1], cacheDirectory: cache) }
        assertStoreError(.repositoryNotFound) { try Repository.readConfig(empty) }
    }

    func testSlotForAnotherRepositoryIsIgnored() throws {
        let (backend, config) = try makeRepository("first")
        let repo = try Repository.open(backend: backend, passphrase: Array("first".utf8), cacheDirectory: cache)
        // A slot that wraps the right master secret, but is labelled for another repository.
        var otherID = config.idBytes
        otherID[0] ^= 0xff
        let foreign = try KeyFile.passphrase(Array("second".utf8), master: try repo.keys.master, repositoryID: otherID,
                                             kdf: cheapKDF(), label: nil)
        XCTAssertNotNil(try foreign.unlock(Array("second".utf8)), "the slot itself opens")
        try Repository.addKeySlot(foreign, to: backend)
        assertStoreError(.wrongPassword) {
            try Repository.open(backend: backend, passphrase: Array("second".utf8), cacheDirectory: cache)
        }
        // Control: the same slot for this repository is used.
        let own = try KeyFile.passphrase(Array("third".utf8), master: try repo.keys.master, repositoryID: config.idBytes,
                                         kdf: cheapKDF(), label: nil)
        try Repository.addKeySlot(own, to: backend)
        let third = try Repository.open(backend: backend, passphrase: Array("third".utf8), cacheDirectory: cache)
        XCTAssertEqual(try third.keys.master.copyBytes(), try repo.keys.master.copyBytes())
        XCTAssertNoThrow(try Repository.open(backend: backend, passphrase: Array("first".utf8), cacheDirectory: cache))
    }

    func testSlotsOfUnknownKindAreSkipped() throws {
        let (backend, config) = try makeRepository("pw")
        let unknown = Array("""
            {"version": 1, "kind": "openpgp", "repository": "\(config.id)", "created": "2026-11-23T21:40:00Z",
             "hostname": "h", "username": "u", "recipient": "ABCDEF"}
            """.utf8)
        try backend.put(try ObjectName(.keys, Hex.encode(SHA256.hash(unknown))), unknown)
        XCTAssertEqual(try backend.list(.keys).count, 2)
        XCTAssertNoThrow(try Repository.open(backend: backend, passphrase: Array("pw".utf8), cacheDirectory: cache))
        assertStoreError(.wrongPassword) { try Repository.open(backend: backend, passphrase: Array("no".utf8), cacheDirectory: cache) }
    }
}
