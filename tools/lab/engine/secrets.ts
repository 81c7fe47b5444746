/**
 * Secret values as the mock runtime carries them, and as the lab state stores them.
 *
 * In the mock runtime a secret arrives as `{ "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
 * value }` (Pulumi's secret signature). The lab state never holds a secret in plain text: like
 * `pulumi stack export`, it holds `{ <sig>: <secret sig>, ciphertext }`, encrypted with AES-256-GCM under
 * a key kept beside the state in a 0600 file (the lab's "passphrase secrets provider").
 */
import { createCipheriv, createDecipheriv, randomBytes } from "crypto";
import * as fs from "fs";

export const SIG_KEY = "4dabf18193072939515e22adb298388d";
export const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

export type SecretWrapper = { [SIG_KEY]: typeof SECRET_SIG; value: unknown };
export type SecretCiphertext = { [SIG_KEY]: typeof SECRET_SIG; ciphertext: string };

function isRecord(v: unknown): v is Record<string, unknown> {
    return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function isSecretWrapper(v: unknown): v is SecretWrapper {
    return isRecord(v) && v[SIG_KEY] === SECRET_SIG && "value" in v;
}

export function isSecretCiphertext(v: unknown): v is SecretCiphertext {
    return isRecord(v) && v[SIG_KEY] === SECRET_SIG && typeof v.ciphertext === "string";
}

export function wrapSecret(value: unknown): SecretWrapper {
    return { [SIG_KEY]: SECRET_SIG, value };
}

/** The plain value with every secret wrapper removed (what a provider receives). */
export function reveal(v: unknown): unknown {
    if (isSecretWrapper(v)) return reveal(v.value);
    if (Array.isArray(v)) return v.map(reveal);
    if (isRecord(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, reveal(x)]));
    return v;
}

/** True when `v` is, or contains, a secret. */
export function containsSecret(v: unknown): boolean {
    if (isSecretWrapper(v) || isSecretCiphertext(v)) return true;
    if (Array.isArray(v)) return v.some(containsSecret);
    if (isRecord(v)) return Object.values(v).some(containsSecret);
    return false;
}

/** Encrypts and decrypts secret values for the lab state. */
export class SecretBox {
    private constructor(private readonly key: Buffer) {}

    /** Loads the key file, creating it (0600, 32 random bytes) when missing. */
    static open(file: string): SecretBox {
        if (!fs.existsSync(file)) fs.writeFileSync(file, randomBytes(32).toString("base64") + "\n", { mode: 0o600 });
        const key = Buffer.from(fs.readFileSync(file, "utf8").trim(), "base64");
        if (key.length !== 32) throw new Error(`${file} is not a lab secrets key (32 bytes, base64)`);
        return new SecretBox(key);
    }

    encrypt(value: unknown): SecretCiphertext {
        const iv = randomBytes(12);
        const c = createCipheriv("aes-256-gcm", this.key, iv);
        const body = Buffer.concat([c.update(JSON.stringify(value), "utf8"), c.final()]);
        return { [SIG_KEY]: SECRET_SIG, ciphertext: `v1:${Buffer.concat([iv, c.getAuthTag(), body]).toString("base64")}` };
    }

    decrypt(s: SecretCiphertext): unknown {
        const raw = Buffer.from(s.ciphertext.replace(/^v1:/, ""), "base64");
        const d = createDecipheriv("aes-256-gcm", this.key, raw.subarray(0, 12));
        d.setAuthTag(raw.subarray(12, 28));
        return JSON.parse(Buffer.concat([d.update(raw.subarray(28)), d.final()]).toString("utf8"));
    }

    /** Every secret wrapper in `v` replaced by its ciphertext (for the state file). */
    seal(v: unknown): unknown {
        if (isSecretWrapper(v)) return this.encrypt(reveal(v.value));
        if (Array.isArray(v)) return v.map((x) => this.seal(x));
        if (isRecord(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, this.seal(x)]));
        return v;
    }

    /** The inverse of `seal`: ciphertexts back to secret wrappers. */
    open(v: unknown): unknown {
        if (isSecretCiphertext(v)) return wrapSecret(this.decrypt(v));
        if (Array.isArray(v)) return v.map((x) => this.open(x));
        if (isRecord(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, this.open(x)]));
        return v;
    }
}
