import Foundation
import Crypto

/// What a `generation` record seals (docs/FORMAT.md §3.1): the previous generation's master
/// secret, and which snapshots and writers stay valid.
public struct RotationSecrets: Codable, Sendable {
    public var previousGeneration: UInt32
    public var previousMaster: String                 // base64, 64 bytes
    /// Every snapshot accepted when the rotation happened. A snapshot of an older generation, or
    /// of a writer retired here, that is not in this list was written after the rotation: rejected.
    public var acceptedSnapshots: [String]
    /// Write-only keys retired by this rotation.
    public var retiredWriters: [String]
    /// Write-only keys of older generations that stay valid (none when a read-capable slot was retired).
    public var keptWriters: [String]
    /// Names of the slots retired (for the record).
    public var retiredSlots: [String]

    enum CodingKeys: String, CodingKey {
        case previousGeneration = "previous_generation", previousMaster = "previous_master"
        case acceptedSnapshots = "accepted_snapshots", retiredWriters = "retired_writers"
        case keptWriters = "kept_writers", retiredSlots = "retired_slots"
    }
}

/// One rotation as readers apply it: when, to which generation, and what it decided.
public struct Rotation: Sendable {
    public let generation: UInt32
    public let created: String
    public let accepted: Set<String>
    public let retiredWriters: Set<String>
    public let keptWriters: Set<String>
    public let retiredSlots: [String]
}

extension KeyFile {
    static let generationContext = Array("coffer:generation".utf8)

    static func generationAAD(repositoryID: [UInt8], generation: UInt32) -> [UInt8] {
        generationContext + repositoryID + [UInt8(generation >> 24 & 0xff), UInt8(generation >> 16 & 0xff),
                                            UInt8(generation >> 8 & 0xff), UInt8(generation & 0xff)]
    }

    /// A `generation` record: `secrets` sealed with AES-256-GCM under
    /// HKDF(master of `generation`, "coffer/v1/generation"), nonce 0 (the key seals this record only).
    static func generationRecord(generation: UInt32, master: SecretBytes, repositoryID: [UInt8], publicKey: [UInt8],
                                 secrets: RotationSecrets, label: String?) throws -> KeyFile {
        let key = try RepositoryKeys.derive(master, repositoryID, "coffer/v1/generation")
        var plain = Array(try JSONEncoder().encode(secrets))
        defer { secureZero(&plain) }
        var out: [UInt8] = []
        let aad = generationAAD(repositoryID: repositoryID, generation: generation)
        try key.withUnsafeBytes { k in
            try plain.withUnsafeBytes { p in
                try aad.withUnsafeBytes { a in
                    try AESGCM.seal(key: Array(k), nonce: [UInt8](repeating: 0, count: 12), plaintext: p, aad: a, into: &out)
                }
            }
        }
        var f = KeyFile(kind: "generation", repository: Hex.encode(repositoryID), created: Timestamp.now().rfc3339,
                        hostname: SystemInfo.hostname, username: SystemInfo.username, label: label,
                        kdf: nil, wrap: nil, wrappedKey: nil, recipients: nil)
        f.generation = generation
        f.publicKey = Data(publicKey).base64EncodedString()
        f.sealed = Data(out).base64EncodedString()
        return f
    }

    /// Opens a `generation` record with the master secret of its generation; nil when it does not open.
    func openGenerationRecord(master: SecretBytes, repositoryID: [UInt8]) -> RotationSecrets? {
        guard kind == "generation", let g = generation, let s = sealed.flatMap({ Data(base64Encoded: $0) }),
              let key = try? RepositoryKeys.derive(master, repositoryID, "coffer/v1/generation") else { return nil }
        let aad = KeyFile.generationAAD(repositoryID: repositoryID, generation: g)
        guard var plain = try? key.withUnsafeBytes({ k in
            try AESGCM.open(key: Array(k), nonce: [UInt8](repeating: 0, count: 12), sealed: Array(s), aad: aad)
        }) else { return nil }
        defer { secureZero(&plain) }
        return try? JSONDecoder().decode(RotationSecrets.self, from: Data(plain))
    }
}

/// The keys a slot's master secret opens, walked back through the generation records.
struct UnlockedKeys {
    let keys: RepositoryKeys
    let rotations: [Rotation]
    /// The highest generation any record in `keys/` claims (unauthenticated), when above the key's own.
    let newerGeneration: UInt32?

    /// `master` is of generation `generation`. Throws `.corrupt` when a record on the way back is
    /// missing or does not open (an incomplete rotation, or damage).
    static func walk(master: SecretBytes, generation: UInt32, repositoryID: [UInt8], slots: [KeySlotEntry],
                     location: String) throws -> UnlockedKeys {
        let id = Hex.encode(repositoryID)
        let records = slots.compactMap { $0.slot }.filter { $0.kind == "generation" && $0.repository == id }
        var masters: [UInt32: SecretBytes] = [generation: master]
        var rotations: [Rotation] = []
        var current = generation
        while current > 0 {
            guard let m = masters[current],
                  let (record, secrets) = records.lazy.filter({ $0.keyGeneration == current })
                    .compactMap({ r in r.openGenerationRecord(master: m, repositoryID: repositoryID).map { (r, $0) } }).first else {
                throw StoreError(.corrupt, "\(location): the record of key generation \(current) is missing or does not open with this key (an interrupted 'key rotate', or damage)")
            }
            guard secrets.previousGeneration < current, let pm = Data(base64Encoded: secrets.previousMaster),
                  pm.count == RepositoryKeys.masterLength else {
                throw StoreError(.corrupt, "\(location): the record of key generation \(current) is malformed")
            }
            var bytes = Array(pm)
            masters[secrets.previousGeneration] = SecretBytes(bytes)
            secureZero(&bytes)
            rotations.append(Rotation(generation: current, created: record.created, accepted: Set(secrets.acceptedSnapshots),
                                      retiredWriters: Set(secrets.retiredWriters), keptWriters: Set(secrets.keptWriters),
                                      retiredSlots: secrets.retiredSlots))
            current = secrets.previousGeneration
        }
        let claimed = records.map(\.keyGeneration).max() ?? 0
        return UnlockedKeys(keys: try RepositoryKeys(masters: masters, repositoryID: repositoryID),
                            rotations: rotations.sorted { $0.generation < $1.generation },
                            newerGeneration: claimed > generation ? claimed : nil)
    }
}

extension Repository {
    /// Why a snapshot is rejected (nil: accepted). A snapshot is rejected when a rotation it
    /// does not predate (its id is not in the rotation's accepted list) superseded its key
    /// generation — unless it was written by a write-only key that rotation kept — or retired
    /// the write-only key that wrote it.
    public func rejection(of record: SnapshotRecord) -> String? {
        for r in rotations where !r.accepted.contains(record.id) {
            if let w = record.writer, r.retiredWriters.contains(w) {
                return "written by write-only key \(w.prefix(8)) after it was retired (key rotation of \(r.created))"
            }
            if record.generation < r.generation, !(record.writer.map { r.keptWriters.contains($0) } ?? false) {
                return "written with key generation \(record.generation) after the rotation to generation \(r.generation) of \(r.created) (a retired or outdated key)"
            }
        }
        return nil
    }

    /// Snapshots in the catalog that `rejection(of:)` refuses, with the reason.
    public func rejectedSnapshots() throws -> [(SnapshotRecord, String)] {
        try catalog.snapshots().compactMap { s in rejection(of: s).map { (s, $0) } }
    }

    /// Read-capable slots left behind by an interrupted `key rotate` (see `rotate`), given the
    /// newest generation this key opens.
    public func outdatedSlots(_ all: [KeySlotEntry], generation: UInt32) -> [KeySlotEntry] {
        let recorded = Set(all.compactMap(\.slot).filter { $0.kind == "generation" && $0.repository == config.id }.map(\.keyGeneration))
        return all.filter { e in
            guard e.isReadCapable(for: config.id), let g = e.slot?.keyGeneration else { return false }
            return g < generation || (g > generation && !recorded.contains(g))
        }
    }

    public struct RotateResult: Sendable {
        public var generation: UInt32
        public var newSlots: [String] = []
        public var retiredSlots: [String] = []
        public var retiredWriters: [String] = []
        public var keptWriters: [String] = []
        /// Key files (`key export-key`) hold the old master secret: their records are removed.
        public var outdatedKeyFiles: [String] = []
        public var acceptedSnapshots = 0
    }

    /// `key rotate`: a new random master secret (generation + 1) for everything written from now
    /// on; old data stays readable through the generation record, which seals the previous master
    /// secret under the new one. `retire` names slots (passphrase, OpenPGP) and write-only records
    /// to retire. The slot that opened the repository (its `passphrase`, when a passphrase slot)
    /// and every OpenPGP slot are re-made for the new generation; other passphrase slots cannot be
    /// (their passphrases are unknown here), so they must be retired explicitly. Retiring a
    /// read-capable slot also retires every write-only key (their writer keys derive from a
    /// master secret the retired slot could read). Key files (`key export-key`) hold the old master
    /// secret and cannot be re-made: their records are removed (export new ones). Call with an
    /// exclusive lock held.
    ///
    /// Order (crash safety): new slots, then the generation record, then deletions. A crash
    /// before the record leaves new slots that do not open (skipped at unlock) next to the
    /// working old ones; after it, both generations' slots open.
    ///
    /// `otherPassphrases` gives the passphrases of further passphrase slots (by slot name) to
    /// re-make instead of retiring them; each must open its slot.
    public func rotate(retire: [String], passphrase: [UInt8]?, otherPassphrases: [String: [UInt8]] = [:],
                       label: String?) throws -> RotateResult {
        let keys = try self.keys
        // A backup that finished between opening and taking the lock must be in the accepted list.
        try syncCatalog()
        guard newerGeneration == nil else {
            throw StoreError(.invalidArgument, "this key is of generation \(keys.generation), but the repository has a newer one: unlock with a current slot")
        }
        let all = try keySlots()
        let id = config.id
        var retiring = Set<String>()
        for name in retire {
            guard let e = all.first(where: { $0.name == name }), let slot = e.slot, slot.repository == id,
                  ["passphrase", "openpgp", "write-only"].contains(slot.kind) else {
                throw StoreError(.invalidArgument, "\(name.prefix(8)) is not a key slot or write-only key of this repository that can be retired")
            }
            guard name != openedSlot else {
                throw StoreError(.invalidArgument, "cannot retire slot \(name.prefix(8)): it is the one that opened the repository; unlock with another slot")
            }
            retiring.insert(name)
        }
        // Leftovers of an interrupted rotation: slots of an older generation (their rotation
        // finished but did not delete them) or of a newer one without a record (their rotation
        // never wrote it, so their master secret is lost). Deleted here without re-making them.
        let leftovers = Set(outdatedSlots(all, generation: keys.generation).map(\.name))
        let readCapable = all.filter { $0.isReadCapable(for: id) }
        let current = readCapable.filter { !leftovers.contains($0.name) }
        let retiresReader = readCapable.contains { retiring.contains($0.name) }
        let opened = all.first { $0.name == openedSlot }
        let unknownPassphrases = current.filter {
            $0.slot?.kind == "passphrase" && $0.name != openedSlot && !retiring.contains($0.name) && otherPassphrases[$0.name] == nil
        }
        guard unknownPassphrases.isEmpty else {
            throw StoreError(.invalidArgument, "key rotate cannot re-make passphrase slots whose passphrase it does not know: \(unknownPassphrases.map { "\($0.shortID)" + ($0.slot?.label.map { " (\($0))" } ?? "") }.joined(separator: ", ")); retire them with --retire ID (and add them again afterwards with 'coffer key add'), or rotate with each removed first")
        }
        let writers = all.filter { $0.slot?.kind == "write-only" && $0.slot?.repository == id }
        let keyFiles = all.filter { $0.slot?.kind == "key-file" && $0.slot?.repository == id }
        let retiredWriters = writers.filter { retiresReader || retiring.contains($0.name) }
        let keptWriters = writers.filter { w in !retiredWriters.contains { $0.name == w.name } }

        let generation = keys.generation + 1
        let master = SecretBytes.random(count: RepositoryKeys.masterLength)
        let next = try RepositoryKeys.Generation(number: generation, master: master, repositoryID: config.idBytes)
        // Build every new slot before writing anything (gpg may refuse a recipient).
        var newSlots: [KeyFile] = []
        if let o = opened?.slot, o.kind == "passphrase" {
            guard let passphrase else { throw StoreError(.invalidArgument, "key rotate needs the passphrase of the slot it opened with") }
            let kdf = o.kdf?.withFreshSalt() ?? KDFParameters.argon2id(memoryBytes: KDFParameters.defaultMemory)
            newSlots.append(try KeyFile.passphrase(passphrase, master: master, repositoryID: config.idBytes, kdf: kdf,
                                                   label: o.label, generation: generation))
        }
        for e in current where e.slot?.kind == "passphrase" && e.name != openedSlot && !retiring.contains(e.name) {
            guard let slot = e.slot, let p = otherPassphrases[e.name] else { continue }
            guard let m = try slot.unlock(p),
                  m.withUnsafeBytes({ a in keys.master.withUnsafeBytes { b in a.elementsEqual(b) } }) else {
                throw StoreError(.wrongPassword, "the passphrase given for key slot \(e.shortID) does not open it; nothing was changed")
            }
            let kdf = slot.kdf?.withFreshSalt() ?? KDFParameters.argon2id(memoryBytes: KDFParameters.defaultMemory)
            newSlots.append(try KeyFile.passphrase(p, master: master, repositoryID: config.idBytes, kdf: kdf,
                                                   label: slot.label, generation: generation))
        }
        for e in current where e.slot?.kind == "openpgp" && !retiring.contains(e.name) {
            newSlots.append(try KeyFile.openPGP(recipients: e.slot?.recipients ?? [], master: master, repositoryID: config.idBytes,
                                                label: e.slot?.label, generation: generation))
        }
        guard !newSlots.isEmpty else {
            throw StoreError(.invalidArgument, "after this rotation no slot would open the repository (a key file cannot be re-made): unlock with a passphrase or OpenPGP slot")
        }
        let accepted = try snapshots().map(\.id)
        let secrets = RotationSecrets(previousGeneration: keys.generation,
                                      previousMaster: keys.master.withUnsafeBytes { Data($0).base64EncodedString() },
                                      acceptedSnapshots: accepted,
                                      retiredWriters: retiredWriters.compactMap { $0.slot?.writer },
                                      keptWriters: keptWriters.compactMap { $0.slot?.writer },
                                      retiredSlots: readCapable.filter { retiring.contains($0.name) }.map(\.name))
        let record = try KeyFile.generationRecord(generation: generation, master: master, repositoryID: config.idBytes,
                                                  publicKey: next.sealingPublicKey, secrets: secrets, label: label)
        var result = RotateResult(generation: generation)
        for s in newSlots { result.newSlots.append(try Repository.addKeySlot(s, to: backend)) }
        _ = try Repository.addKeySlot(record, to: backend)
        let delete = readCapable.map(\.name) + retiredWriters.map(\.name) + keyFiles.map(\.name)
        for name in delete {
            do { try backend.delete(try ObjectName(.keys, name)) } catch let e as BackendError {
                throw StoreError(.io, "key generation \(generation) is in place, but removing old slot \(name.prefix(8)) failed: \(e.description); remove it with 'coffer key remove'")
            }
        }
        result.retiredSlots = readCapable.filter { retiring.contains($0.name) }.map(\.name)
        result.retiredWriters = retiredWriters.map(\.name)
        result.keptWriters = keptWriters.map(\.name)
        result.outdatedKeyFiles = keyFiles.map(\.name)
        result.acceptedSnapshots = accepted.count
        return result
    }
}
