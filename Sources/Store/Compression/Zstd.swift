internal import CZstd

/// A zstd failure: corrupt input, a size mismatch, or an error reported by libzstd.
public struct ZstdError: Error, CustomStringConvertible {
    /// Human-readable reason, including libzstd's error name where there is one.
    public let message: String

    /// Creates an error with the given message.
    public init(message: String) {
        self.message = message
    }

    public var description: String { "zstd: \(message)" }
}

/// Reusable compression context (ZSTD_CCtx); not thread-safe — one per thread.
public final class ZstdCompressor {
    private let context: OpaquePointer
    /// Output buffer reused across calls; grows to the largest bound seen.
    private var scratch: [UInt8] = []
    /// The compression level passed to `init(level:)`, as clamped by libzstd.
    public let level: Int32

    /// Creates a context (`ZSTD_createCCtx`) and sets `ZSTD_c_compressionLevel` to `level`
    /// (clamped to `ZSTD_minCLevel()...ZSTD_maxCLevel()`) and `ZSTD_c_contentSizeFlag` to 1.
    public init(level: Int32 = 3) {
        guard let context = ZSTD_createCCtx() else { fatalError("ZSTD_createCCtx failed (out of memory)") }
        self.context = context
        let clamped = min(max(level, ZSTD_minCLevel()), ZSTD_maxCLevel())
        self.level = clamped
        zstdCheck(ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, clamped), "set compression level")
        zstdCheck(ZSTD_CCtx_setParameter(context, ZSTD_c_contentSizeFlag, 1), "set content size flag")
    }

    deinit {
        ZSTD_freeCCtx(context)
    }

    /// Compresses `src` into one zstd frame with the content size written in the frame header.
    ///
    /// Wraps `ZSTD_compress2`, writing into a reusable scratch buffer of `ZSTD_compressBound`
    /// bytes (so it cannot run out of room); the result is copied out at its exact size.
    public func compress(_ src: UnsafeRawBufferPointer) -> [UInt8] {
        compress(src) { [UInt8]($0) }
    }

    /// Compresses `src` like `compress(_:)` and passes the frame to `body` in place, inside the
    /// scratch buffer (valid only during the call; the next compression overwrites it).
    public func compress<R>(_ src: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let context = self.context
        return try withScratch(src) { srcBase, dst in
            let written = ZSTD_compress2(context, dst.baseAddress, dst.count, srcBase, src.count)
            zstdCheck(written, "ZSTD_compress2")
            return try body(UnsafeRawBufferPointer(rebasing: dst[0..<written]))
        }
    }

    /// Calls `body` with `src`'s base address and the scratch buffer, grown to at least
    /// `ZSTD_compressBound(src.count)` bytes (the slice passed is exactly that long).
    private func withScratch<R>(_ src: UnsafeRawBufferPointer,
                                _ body: (UnsafeRawPointer, UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        let bound = ZSTD_compressBound(src.count)
        precondition(ZSTD_isError(bound) == 0, "zstd: input of \(src.count) bytes is too large")
        if scratch.count < bound {
            scratch = [UInt8](repeating: 0, count: bound)
        }
        return try withNonNullBase(src) { srcBase in
            try scratch.withUnsafeMutableBytes { try body(srcBase, UnsafeMutableRawBufferPointer(rebasing: $0[0..<bound])) }
        }
    }

    /// Compresses `src` into one frame (content size in the header) unless its first
    /// `sampleSize` bytes do not shrink: the sample is compressed and flushed first, and if
    /// that output is not below `percent` % of the sample, nil is returned without touching the
    /// rest (incompressible data costs one small trial). Otherwise the frame is finished from
    /// where the sample ended, so no byte is compressed twice. `body` gets the frame in place
    /// (valid only during the call). Wraps ZSTD_compressStream2 (ZSTD_e_flush, then ZSTD_e_end).
    public func compressIfShrinking<R>(_ src: UnsafeRawBufferPointer, sampleSize: Int, percent: Int,
                                       _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R? {
        let context = self.context
        return try withScratch(src) { srcBase, dst -> R? in
            zstdCheck(ZSTD_CCtx_reset(context, ZSTD_reset_session_only), "ZSTD_CCtx_reset")
            zstdCheck(ZSTD_CCtx_setPledgedSrcSize(context, UInt64(src.count)), "ZSTD_CCtx_setPledgedSrcSize")
            var output = ZSTD_outBuffer(dst: dst.baseAddress, size: dst.count, pos: 0)
            func feed(upTo end: Int, from start: Int, _ mode: ZSTD_EndDirective) {
                var input = ZSTD_inBuffer(src: srcBase, size: end, pos: start)
                var left = 1
                while left != 0 {   // the output has room for everything: this ends
                    left = ZSTD_compressStream2(context, &output, &input, mode)
                    zstdCheck(left, "ZSTD_compressStream2")
                }
            }
            let sample = min(sampleSize, src.count)
            feed(upTo: sample, from: 0, sample == src.count ? ZSTD_e_end : ZSTD_e_flush)
            guard output.pos * 100 < sample * percent else {
                zstdCheck(ZSTD_CCtx_reset(context, ZSTD_reset_session_only), "ZSTD_CCtx_reset")
                return nil
            }
            if sample < src.count { feed(upTo: src.count, from: sample, ZSTD_e_end) }
            return try body(UnsafeRawBufferPointer(rebasing: dst[0..<output.pos]))
        }
    }
}

/// Reusable decompression context (ZSTD_DCtx); not thread-safe — one per thread.
public final class ZstdDecompressor {
    private let context: OpaquePointer

    /// Creates a context (`ZSTD_createDCtx`).
    public init() {
        guard let context = ZSTD_createDCtx() else { fatalError("ZSTD_createDCtx failed (out of memory)") }
        self.context = context
    }

    deinit {
        ZSTD_freeDCtx(context)
    }

    /// Decompresses one frame whose decompressed size must be exactly `expectedSize`; throws on
    /// corrupt input or size mismatch.
    ///
    /// Checks that `src` is exactly one frame (`ZSTD_findFrameCompressedSize`) whose header
    /// declares `expectedSize` (`ZSTD_getFrameContentSize`), then decompresses it with
    /// `ZSTD_decompressDCtx` into a buffer of exactly `expectedSize` bytes.
    public func decompress(_ src: UnsafeRawBufferPointer, expectedSize: Int) throws -> [UInt8] {
        guard expectedSize >= 0 else { throw ZstdError(message: "negative expected size \(expectedSize)") }
        return try withNonNullBase(src) { srcBase in
            let frameSize = ZSTD_findFrameCompressedSize(srcBase, src.count)
            if ZSTD_isError(frameSize) != 0 {
                throw ZstdError(message: "corrupt frame (\(errorName(frameSize)))")
            }
            guard frameSize == src.count else {
                throw ZstdError(message: "input holds \(src.count - frameSize) bytes after the first frame")
            }
            let contentSize = ZSTD_getFrameContentSize(srcBase, src.count)
            // ZSTD_CONTENTSIZE_UNKNOWN is (0ULL - 1), ZSTD_CONTENTSIZE_ERROR is (0ULL - 2).
            if contentSize == UInt64.max - 1 { throw ZstdError(message: "corrupt frame header") }
            if contentSize == UInt64.max { throw ZstdError(message: "frame header does not declare its content size") }
            guard contentSize == UInt64(expectedSize) else {
                throw ZstdError(message: "frame declares \(contentSize) bytes, expected \(expectedSize)")
            }
            // Capacity at least 1 so that the destination pointer is never null.
            var failure: ZstdError?
            let result = [UInt8](unsafeUninitializedCapacity: max(expectedSize, 1)) { buffer, initialized in
                let written = ZSTD_decompressDCtx(context, buffer.baseAddress, expectedSize, srcBase, src.count)
                if ZSTD_isError(written) != 0 {
                    failure = ZstdError(message: "corrupt frame (\(errorName(written)))")
                } else if written != expectedSize {
                    failure = ZstdError(message: "frame decompressed to \(written) bytes, expected \(expectedSize)")
                } else {
                    initialized = written
                }
            }
            if let failure { throw failure }
            return result
        }
    }
}

/// One-shot helpers; each call creates and frees its own context.
public enum Zstd {
    /// Compresses `src` into one frame at `level` (see ``ZstdCompressor/compress(_:)``).
    public static func compress(_ src: [UInt8], level: Int32 = 3) -> [UInt8] {
        let compressor = ZstdCompressor(level: level)
        return src.withUnsafeBytes { compressor.compress($0) }
    }

    /// Decompresses one frame of exactly `expectedSize` bytes (see ``ZstdDecompressor/decompress(_:expectedSize:)``).
    public static func decompress(_ src: [UInt8], expectedSize: Int) throws -> [UInt8] {
        let decompressor = ZstdDecompressor()
        return try src.withUnsafeBytes { try decompressor.decompress($0, expectedSize: expectedSize) }
    }
}

/// libzstd's name for an error code (`ZSTD_getErrorName`).
private func errorName(_ code: Int) -> String {
    String(cString: ZSTD_getErrorName(code))
}

/// Traps if `code` is a zstd error: used where failure means a programming error or a libzstd
/// bug (for example compressing into a buffer of `ZSTD_compressBound` bytes).
private func zstdCheck(_ code: Int, _ what: String) {
    precondition(ZSTD_isError(code) == 0, "zstd: \(what) failed: \(errorName(code))")
}

/// Calls `body` with a non-null base address for `buffer` (a one-byte dummy for empty buffers).
private func withNonNullBase<R>(_ buffer: UnsafeRawBufferPointer,
                                _ body: (UnsafeRawPointer) throws -> R) rethrows -> R {
    if let base = buffer.baseAddress { return try body(base) }
    var dummy: UInt8 = 0
    return try withUnsafeBytes(of: &dummy) { try body($0.baseAddress!) }
}
