// Works around a memory bug in `xsalsa20` 1.2.0, the WASM cipher @libp2p/pnet (our cluster-key protector) uses.
// All its instances share one WebAssembly memory, but each keeps its own Uint8Array view of it. Growing the
// memory detaches every other instance's view (length 0), so each of them, at its next update, "grows" again by
// the whole size it needs: with two ciphers per connection the memory grew by at least 64 KiB per message and
// each growth copied all of it — RSS and CPU rose for as long as the daemon ran, until
// `WebAssembly.Memory.grow(): Maximum memory size exceeded` killed it (seen after ~1 GB of traffic).
// The fix: an instance whose view is detached takes the latest live view first, and grows only if still short.
import XSalsa20 from 'xsalsa20';

interface WasmCipher {
  _memory: Uint8Array;
  realloc(size: number): void;
}

let installed = false;

/** Patches the shared WASM cipher prototype once (idempotent). Returns whether the WASM path was patched. */
export function installXsalsa20Fix(): boolean {
  if (installed) return true;
  // An instance exposes the (module-private) WASM cipher class as the prototype of its `_xor`.
  const probe = new XSalsa20(new Uint8Array(24), new Uint8Array(32)) as unknown as { _xor: WasmCipher; finalize(): void };
  const proto = Object.getPrototypeOf(probe._xor) as WasmCipher;
  probe.finalize();
  if (typeof proto.realloc !== 'function') return false; // the pure-JS fallback: nothing to fix
  const original = proto.realloc;
  let latest: Uint8Array | undefined;
  proto.realloc = function realloc(this: WasmCipher, size: number): void {
    if (latest !== undefined && latest.byteLength > 0 && latest.buffer !== this._memory.buffer) this._memory = new Uint8Array(latest.buffer);
    if (size < this._memory.length) return;
    original.call(this, size);
    latest = this._memory;
  };
  installed = true;
  return true;
}
