// The private key file format (keygen --out writes it, mint --key-file reads it) and how it keeps the two halves of
// a signing key apart: `bai-ed25519-private:` + base64url of the 32-byte seed; the bare seed older keygens wrote is
// still read; a public key (as [signing_keys] holds it) is refused; a private key given as a public one is named.
import { describe, expect, test } from "bun:test";
import { b64urlEncode, formatPrivateKey, looksLikePrivateKey, parsePrivateKeyFile, parsePublicKey, PRIVATE_KEY_PREFIX, publicKeyFromSeed } from "../src/controls/keys.ts";

const seed = Uint8Array.from({ length: 32 }, (_, i) => (i * 37 + 11) & 0xff);
const encoded = b64urlEncode(seed);

/** The thrown message, or "" when nothing was thrown. */
function thrown(f: () => unknown): string {
  try {
    f();
    return "";
  } catch (e) {
    return (e as Error).message;
  }
}

describe("private key files", () => {
  test("formatPrivateKey writes one prefixed line that parsePrivateKeyFile reads back", () => {
    const text = formatPrivateKey(seed);
    expect(text).toBe(`${PRIVATE_KEY_PREFIX}${encoded}\n`);
    expect(parsePrivateKeyFile(text)).toEqual({ seed, legacy: false });
  });

  test("comment lines, blank lines, CRLF and surrounding spaces are skipped", () => {
    const text = `# private key for kid 1\r\n\r\n  ${PRIVATE_KEY_PREFIX}${encoded}  \r\n\n`;
    expect(parsePrivateKeyFile(text)).toEqual({ seed, legacy: false });
  });

  test("the bare base64url seed older keygens wrote is still read, marked legacy", () => {
    expect(parsePrivateKeyFile(`${encoded}\n`)).toEqual({ seed, legacy: true });
  });

  const publicKey = publicKeyFromSeed(seed);
  const refusedAsPublic: Array<[string, string]> = [
    ["standard base64 with padding (how keygen prints the public key)", Buffer.from(publicKey).toString("base64")],
    ["a whole [signing_keys] line", `1 = "${Buffer.from(publicKey).toString("base64")}"`],
    ["padded base64url", `${Buffer.from(publicKey).toString("base64url")}=`],
  ];
  for (const [what, text] of refusedAsPublic) {
    test(`refused as a public key: ${what}`, () => {
      const msg = thrown(() => parsePrivateKeyFile(`${text}\n`));
      expect(msg).toMatch(/public key/);
      expect(msg).not.toContain(text.slice(0, 12));
    });
  }

  const corrupt: Array<[string, string, RegExp]> = [
    ["an empty file", "", /empty/],
    ["only comments", "# nothing here\n", /empty/],
    ["two key lines", `${PRIVATE_KEY_PREFIX}${encoded}\n${PRIVATE_KEY_PREFIX}${encoded}\n`, /one key line, found 2/],
    ["a prefix with a short seed", `${PRIVATE_KEY_PREFIX}${encoded.slice(0, 40)}\n`, /corrupt private key/],
    ["a prefix with padding", `${PRIVATE_KEY_PREFIX}${encoded}=\n`, /corrupt private key/],
    ["something else entirely", "hello world\n", /not a beyond-ai private key/],
  ];
  for (const [what, text, message] of corrupt) {
    test(`refused with a message that never echoes the file: ${what}`, () => {
      const msg = thrown(() => parsePrivateKeyFile(text));
      expect(msg).toMatch(message);
      expect(msg).not.toContain(encoded.slice(0, 12));
    });
  }
});

describe("a private key where a public key belongs", () => {
  test("looksLikePrivateKey spots the prefix (and only the prefix)", () => {
    expect(looksLikePrivateKey(formatPrivateKey(seed))).toBe(true);
    expect(looksLikePrivateKey(`  ${PRIVATE_KEY_PREFIX}x`)).toBe(true);
    expect(looksLikePrivateKey(Buffer.from(publicKeyFromSeed(seed)).toString("base64"))).toBe(false);
    expect(looksLikePrivateKey(encoded)).toBe(false);
  });

  test("parsePublicKey refuses it as a private key, without echoing it", () => {
    const msg = thrown(() => parsePublicKey(formatPrivateKey(seed).trim()));
    expect(msg).toMatch(/this is a private key/);
    expect(msg).not.toContain(encoded.slice(0, 12));
  });
});
