import Foundation
import Store

/// A one-line live status (files, bytes, rate, ETA) redrawn on the terminal while work runs.
final class ProgressLine: @unchecked Sendable {
    private let progress: BackupProgress
    private let timer: DispatchSourceTimer
    private let start = Monotonic.now()
    private let verb: String

    init(_ progress: BackupProgress, verb: String) {
        self.progress = progress
        self.verb = verb
        timer = DispatchSource.makeTimerSource(queue: DispatchQueue.global())
        timer.schedule(deadline: .now() + 0.25, repeating: 0.25)
        timer.setEventHandler { [weak self] in self?.draw() }
        timer.resume()
    }

    private func draw() {
        let f = progress.snapshot
        let elapsed = max(0.001, Monotonic.now() - start)
        let rate = Double(f.bytesDone) / elapsed
        var line = "\(verb) \(f.files) files"
        if let tf = f.totalFiles { line += "/\(tf)" }
        line += ", \(formatBytes(f.bytesDone))"
        if let tb = f.totalBytes { line += "/\(formatBytes(tb))" }
        line += ", \(formatBytes(Int64(rate)))/s"
        if let tb = f.totalBytes, rate > 0, tb > f.bytesDone {
            line += ", ETA \(formatDuration(Double(tb - f.bytesDone) / rate))"
        }
        if f.errors > 0 { line += ", \(f.errors) errors" }
        var cols = 80
        var ws = winsize()
        if ioctl(1, UInt(TIOCGWINSZ), &ws) == 0, ws.ws_col > 20 { cols = Int(ws.ws_col) }
        if let current = f.currentPath, line.count + 3 < cols {
            let room = cols - line.count - 3
            let p = current.description
            line += "  " + (p.count > room ? "…" + p.suffix(room - 1) : p)
        }
        FileHandleOut.stdout.write("\r\u{1b}[K" + String(line.prefix(cols - 1)))
    }

    func finish() {
        timer.cancel()
        FileHandleOut.stdout.write("\r\u{1b}[K")
    }
}
