import Glibc

extension ContentSaver {
    /// Stores a changed file whose previous version recorded extent fingerprints
    /// (docs/FORMAT.md §11), reading it once:
    ///
    /// - at a position where a previous extent started, the bytes of that extent's length are
    ///   fingerprinted (GMAC, ~6 GB/s on one core); if they are unchanged and the chunk is still
    ///   in the index, the extent is kept without chunking or naming it (HMAC-SHA256, ~1 GB/s);
    /// - elsewhere the file is chunked and named as usual, until a cut lands on the start of a
    ///   previous extent again.
    ///
    /// A kept extent is what chunking would have produced: a cut depends only on the bytes from
    /// the chunk's start to the cut, so the same bytes at the same offset cut at the same place.
    /// The previous last extent ended at end of file, so it is kept only where the file still
    /// ends there. Data inserted or removed shifts later extents off their offsets: from there
    /// on the file is chunked in full, as without fingerprints. Returns the extents and one
    /// fingerprint per extent for the next time.
    func storeContentReusing(_ fh: FileHandle, size: Int64, previous: [Node.Extent],
                             fingerprints: [ExtentFingerprint]) throws -> ([Node.Extent], [ExtentFingerprint]?) {
        var old: [(start: Int64, length: Int64, id: BlobID, fingerprint: ExtentFingerprint)] = []
        var byStart: [Int64: Int] = [:]
        var offset: Int64 = 0
        for (e, f) in zip(previous, fingerprints) {
            guard case .chunk(let id, let length) = e else {   // (rows with fingerprints have only chunks)
                return try storeContentReusing(fh, size: size, previous: [], fingerprints: [])
            }
            byStart[offset] = old.count
            old.append((offset, length, id, f))
            offset += length
        }
        let writer = self.writer
        let lookahead = maxChunk
        var window = FileWindow(fh: fh, buffer: buffer, start: 0, end: size)
        var extents: [Node.Extent] = [], out: [ExtentFingerprint] = []
        var pos: Int64 = 0
        while true {
            try checkpoint()
            // Enough bytes for the previous extent that started here, else for a longest chunk:
            // the window moves only when they are not there, so little is ever copied twice.
            // (One byte more for the last one: whether the file still ends after it.)
            let k = byStart[pos]
            let need = k.map { Int(old[$0].length) + ($0 == old.count - 1 ? 1 : 0) } ?? lookahead
            bytesRead += try window.fill(from: pos, lookahead: min(need, buffer.count))
            var avail = window.available(from: pos)
            if avail == 0 { break }
            var rel = window.index(of: pos)
            if let k {
                let o = old[k], length = Int(o.length)
                if length <= avail && (k < old.count - 1 || (window.atEnd && length == avail)) {
                    let bytes = UnsafeRawBufferPointer(rebasing: buffer[rel..<(rel + length)])
                    if writer.fingerprint(bytes, nonce: o.fingerprint.nonce) == o.fingerprint, try newBlobs.isKnown(o.id) {
                        extents.append(.chunk(o.id, length: o.length))
                        out.append(o.fingerprint)
                        pos += o.length
                        chunkDone(o.length)
                        continue
                    }
                }
            }
            // Changed (or shifted) bytes: chunk until a cut meets a previous extent's start.
            bytesRead += try window.fill(from: pos, lookahead: lookahead)
            avail = window.available(from: pos)
            rel = window.index(of: pos)
            let final = window.atEnd
            var cuts: [(start: Int, length: Int)] = []
            var s = rel, batch = 0
            let end = rel + avail
            while s < end {
                guard let cut = chunker.nextCut(UnsafeRawBufferPointer(rebasing: buffer[s..<end]), isFinal: final) else { break }
                cuts.append((s, cut))
                s += cut
                batch += cut
                if byStart[window.offset(of: s)] != nil || batch >= 4 * lookahead { break }
            }
            guard !cuts.isEmpty else {
                // fill() leaves at least a maximum chunk (or the rest of the file) to cut.
                throw StoreError(.io, "internal error: no chunk boundary in \(avail) bytes at offset \(pos)")
            }
            for c in try storeCuts(cuts, in: buffer, fingerprint: true) {
                extents.append(.chunk(c.id, length: Int64(c.length)))
                if let f = c.fingerprint { out.append(f) }
                chunkDone(Int64(c.length))
            }
            pos = window.offset(of: s)
        }
        return (extents, out.count == extents.count ? out : nil)
    }
}

/// A sliding view of a file in a buffer: `buffer[0..<count]` holds the file's bytes from `start`.
struct FileWindow {
    let fh: FileHandle
    let buffer: UnsafeMutableRawBufferPointer
    /// Where the file (or region) ends: as given, or where a read found the file shorter.
    private(set) var end: Int64
    private(set) var start: Int64
    private(set) var count = 0

    /// A window on the file's bytes from `start` to `end` (its size, or the end of a region).
    init(fh: FileHandle, buffer: UnsafeMutableRawBufferPointer, start: Int64, end: Int64) {
        self.fh = fh
        self.buffer = buffer
        self.start = start
        self.end = end
    }

    var atEnd: Bool { start + Int64(count) >= end }
    func available(from pos: Int64) -> Int { Int(start + Int64(count) - pos) }
    func index(of pos: Int64) -> Int { Int(pos - start) }
    func offset(of index: Int) -> Int64 { start + Int64(index) }

    /// Makes the window hold at least `lookahead` bytes from `pos` (or the rest of the file),
    /// moving what is left to the front and reading behind it. `pos` must lie in the window.
    /// Returns the bytes read.
    mutating func fill(from pos: Int64, lookahead: Int) throws -> Int64 {
        precondition(pos >= start && pos <= start + Int64(count) && lookahead <= buffer.count)
        if available(from: pos) >= lookahead || atEnd { return 0 }
        let keep = available(from: pos), skip = index(of: pos)
        if keep > 0 && skip > 0 { memmove(buffer.baseAddress!, buffer.baseAddress! + skip, keep) }
        start = pos
        count = keep
        var read: Int64 = 0
        while count < buffer.count && !atEnd {
            let want = Int(min(Int64(buffer.count - count), end - (start + Int64(count))))
            let n = try fh.pread(into: UnsafeMutableRawBufferPointer(rebasing: buffer[count..<(count + want)]),
                                 offset: start + Int64(count))
            if n == 0 {   // the file shrank while we read it
                end = start + Int64(count)
                break
            }
            count += n
            read += Int64(n)
        }
        return read
    }
}
