// Typings for `xsalsa20` (no published types in use here): the stream cipher @libp2p/pnet uses.
declare module 'xsalsa20' {
  interface XSalsa20Cipher {
    update(input: Uint8Array, output?: Uint8Array): Uint8Array;
    finalize(): void;
  }
  interface XSalsa20Constructor {
    new (nonce: Uint8Array, key: Uint8Array): XSalsa20Cipher;
    (nonce: Uint8Array, key: Uint8Array): XSalsa20Cipher;
  }
  const XSalsa20: XSalsa20Constructor;
  export default XSalsa20;
}
