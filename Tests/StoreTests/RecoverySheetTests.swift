import Crypto
import Foundation
@testable import Store
import XCTest

/// The printable recovery sheet (docs/KEYS.md): encoding, tolerant parsing, per-line check letters
/// and the whole-sheet check value.
final class RecoverySheetTests: XCTestCase {
    /// Fixed inputs so every assertion is deterministic.
    private let masterBytes: [UInt8] = (0..<64).map { UInt8(($0 * 37 + 11) & 0xff) }
    private let repositoryID = String(repeating: "5a", count: 32)
    private var master: SecretBytes { SecretBytes(masterBytes) }

    private func sheet() -> String {
        RecoverySheet.render(master: master, repositoryID: repositoryID, location: "/srv/coffer",
                             printed: Timestamp(seconds: 1_800_000_000, nanoseconds: 0), hostname: "web1")
    }

    /// The sheet's lines, with key line `n` (1-based) replaced by `transform(line)`.
    private func editKeyLine(_ text: String, _ n: Int, _ transform: (String) -> String) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            line.trimmingCharacters(in: .whitespaces).hasPrefix("\(n): ") ? transform(String(line)) : String(line)
        }.joined(separator: "\n")
    }

    private func parseError(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> String? {
        do {
            _ = try RecoverySheet.parse(text)
            XCTFail("the sheet was accepted", file: file, line: line)
            return nil
        } catch let e as StoreError {
            return e.message
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
            return nil
        }
    }

    // MARK: - Encoding

    func testLayoutAndRoundTrip() throws {
        let text = sheet()
        XCTAssertTrue(text.contains("Repository id: \(repositoryID)"), text)
        XCTAssertTrue(text.contains("Location:      /srv/coffer"), text)
        XCTAssertTrue(text.contains("Printed:       2027-01-15 08:00:00 UTC on web1"), text)
        XCTAssertTrue(text.contains("coffer key import-recovery"), "instructions: \(text)")
        XCTAssertTrue(text.lowercased().contains("offline"), text)

        let keyLines = RecoverySheet.keyLines(master: master)
        XCTAssertEqual(keyLines.count, 8)
        let pattern = #"^[1-8]: [0-9a-f]{4} [0-9a-f]{4} [0-9a-f]{4} [0-9a-f]{4}  [ghjkmnpqrstvwxyz]{2}$"#
        var hex = ""
        for (i, l) in keyLines.enumerated() {
            XCTAssertNotNil(l.range(of: pattern, options: .regularExpression), l)
            XCTAssertTrue(l.hasPrefix("\(i + 1): "), l)
            XCTAssertTrue(text.contains("    " + l + "\n"), "key line \(i + 1) is on the sheet")
            hex += l.dropFirst(3).prefix(19).replacingOccurrences(of: " ", with: "")
        }
        XCTAssertEqual(hex, Hex.encode(masterBytes), "the key lines are the master secret in order")

        let parsed = try RecoverySheet.parse(text)
        XCTAssertEqual(parsed.repositoryID, repositoryID)
        XCTAssertEqual(parsed.master.copyBytes(), masterBytes)
    }

    func testCheckValueIsHMACOfTheRepositoryID() throws {
        let expected = Hex.encode(HMACSHA256.authenticationCode(key: masterBytes,
                                                                data: Array("coffer recovery check".utf8) + Hex.decode(repositoryID)!).prefix(4))
        XCTAssertEqual(RecoverySheet.checkValue(master: master, repositoryID: Hex.decode(repositoryID)!), expected)
        XCTAssertTrue(sheet().contains("\nCheck: \(expected)\n"), sheet())
        XCTAssertEqual(try RecoverySheet.parse(sheet()).checkValue, expected)
    }

    func testLineCheckVectors() {
        // CRC-8, polynomial 0x07, initial 0xff, over line number ‖ 8 bytes; nibbles → "ghjkmnpqrstvwxyz".
        // Values computed independently (Python).
        XCTAssertEqual(RecoverySheet.lineCheck(1, Array(0..<8)[...]), "ty")
        XCTAssertEqual(RecoverySheet.lineCheck(8, [UInt8](repeating: 0xff, count: 8)[...]), "hs")
        XCTAssertEqual(RecoverySheet.lineCheck(3, Hex.decode("0123456789abcdef")![...]), "st")
        XCTAssertNotEqual(RecoverySheet.lineCheck(1, Array(0..<8)[...]), RecoverySheet.lineCheck(2, Array(0..<8)[...]),
                          "the line number is part of the check")
    }

    func testNothingElseSecretOnTheSheet() {
        let text = sheet()
        let groups = RecoverySheet.keyLines(master: master).flatMap { $0.dropFirst(3).prefix(19).split(separator: " ").map(String.init) }
        XCTAssertEqual(groups.count, 32)
        for line in text.split(separator: "\n") {
            let isKeyLine = line.range(of: #"^    [1-8]: "#, options: .regularExpression) != nil
            if isKeyLine { continue }
            for g in groups { XCTAssertFalse(line.contains(g), "key group \(g) appears outside the key lines: \(line)") }
        }
        XCTAssertFalse(text.contains(Hex.encode(masterBytes)))
        XCTAssertFalse(text.contains(Data(masterBytes).base64EncodedString()))
    }

    // MARK: - Tolerant parsing

    func testParsingIgnoresCaseSpacingAndNoise() throws {
        let text = sheet()
        var variants: [String] = []
        variants.append(text.uppercased())
        variants.append(text.replacingOccurrences(of: " ", with: ""))
        variants.append(text.replacingOccurrences(of: "\n", with: "\r\n"))
        variants.append(text.replacingOccurrences(of: "\n", with: "\n\n  \t"))
        variants.append(editKeyLine(text, 4) { l in "0" + l.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: " ", with: "-") })
        // Only the id, key lines and check value, in another order and without the instructions.
        let kept = text.split(separator: "\n").filter { $0.contains("Repository id") || $0.hasPrefix("Check") ||
            $0.range(of: #"^    [1-8]: "#, options: .regularExpression) != nil }
        variants.append(kept.reversed().joined(separator: "\n"))
        for (i, v) in variants.enumerated() {
            let p = try RecoverySheet.parse(v)
            XCTAssertEqual(p.master.copyBytes(), masterBytes, "variant \(i)")
            XCTAssertEqual(p.repositoryID, repositoryID, "variant \(i)")
        }
    }

    // MARK: - Errors

    func testEverySingleMistypedDigitIsCaughtOnItsLine() throws {
        let text = sheet()
        let hexDigits = Array("0123456789abcdef")
        for n in 1...8 {
            for pos in 0..<16 {
                for d in hexDigits {
                    let edited = editKeyLine(text, n) { l in
                        var chars = Array(l)
                        // "    n: gggg gggg gggg gggg  cc": data digit pos is after 7 chars, plus one per preceding group gap.
                        let idx = 7 + pos + pos / 4
                        guard chars[idx] != d else { return l }
                        chars[idx] = d
                        return String(chars)
                    }
                    if edited == text { continue }
                    guard let msg = parseError(edited) else { return }
                    XCTAssertTrue(msg.contains("line \(n) "), "digit \(pos) of line \(n) → \(d): \(msg)")
                }
            }
        }
    }

    func testTypoInCheckLettersSwappedDigitsAndSwappedLinesAreCaught() throws {
        let text = sheet()
        // A mistyped check letter.
        let letter = editKeyLine(text, 2) { l in
            var c = Array(l)
            c[c.count - 1] = c[c.count - 1] == "g" ? "h" : "g"
            return String(c)
        }
        XCTAssertTrue(parseError(letter)?.contains("line 2 ") == true)
        // Every swap of two neighbouring, different digits within a group.
        for n in 1...8 {
            for pos in 0..<15 where pos % 4 != 3 {
                let edited = editKeyLine(text, n) { l in
                    var c = Array(l)
                    let i = 7 + pos + pos / 4
                    c.swapAt(i, i + 1)
                    return String(c)
                }
                if edited == text { continue }
                XCTAssertTrue(parseError(edited)?.contains("line \(n) ") == true, "swap at \(pos) on line \(n)")
            }
        }
        // Two lines' contents exchanged (numbers kept).
        let lines = RecoverySheet.keyLines(master: master)
        let swapped = editKeyLine(editKeyLine(text, 3) { _ in "    3:" + lines[4].dropFirst(2) }, 5) { _ in "    5:" + lines[2].dropFirst(2) }
        XCTAssertNotNil(parseError(swapped))
        // A non-hex character, a short line.
        XCTAssertTrue(parseError(editKeyLine(text, 6) { $0.replacingOccurrences(of: "6: ", with: "6: o") .replacingOccurrences(of: "  ", with: " ") })?
            .contains("line 6") == true)
        XCTAssertTrue(parseError(editKeyLine(text, 7) { String($0.dropLast(4)) })?.contains("line 7") == true)
    }

    func testMissingDuplicateAndExtraLines() {
        let text = sheet()
        let missing = text.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.hasPrefix("    8: ") }.joined(separator: "\n")
        XCTAssertTrue(parseError(missing)?.contains("key line 8 is missing") == true)
        let line1 = RecoverySheet.keyLines(master: master)[0]
        XCTAssertTrue(parseError(text + line1 + "\n")?.contains("key line 1 appears twice") == true)
        XCTAssertTrue(parseError(text + "9: 0000 0000 0000 0000  gg\n")?.contains("line 9") == true)
        XCTAssertTrue(parseError(text.replacingOccurrences(of: "Repository id:", with: "Repo:"))?.contains("Repository id") == true)
        XCTAssertTrue(parseError(text.replacingOccurrences(of: "\nCheck:", with: "\nChk:"))?.contains("Check") == true)
    }

    func testAlteredRepositoryIDOrCheckValueIsRejected() {
        let text = sheet()
        let otherID = String(repeating: "a5", count: 32)
        XCTAssertTrue(parseError(text.replacingOccurrences(of: repositoryID, with: otherID))?.contains("check value") == true)
        let check = RecoverySheet.checkValue(master: master, repositoryID: Hex.decode(repositoryID)!)
        var wrong = Array(check)
        wrong[0] = wrong[0] == "0" ? "1" : "0"
        XCTAssertTrue(parseError(text.replacingOccurrences(of: "Check: \(check)", with: "Check: \(String(wrong))"))?.contains("check value") == true)
    }

    func testErrorsNeverQuoteTheKey() {
        let text = sheet()
        let groups = RecoverySheet.keyLines(master: master).flatMap { $0.dropFirst(3).prefix(19).split(separator: " ").map(String.init) }
        let broken = [
            editKeyLine(text, 1) { $0.replacingOccurrences(of: "1: ", with: "1: 0") },
            editKeyLine(text, 2) { l in var c = Array(l); c[8] = c[8] == "0" ? "1" : "0"; return String(c) },
            text.replacingOccurrences(of: "Check:", with: "Check: 00"),
        ]
        for b in broken {
            guard let msg = parseError(b) else { continue }
            for g in groups { XCTAssertFalse(msg.lowercased().contains(g), "\(msg) quotes key group \(g)") }
        }
    }
}
