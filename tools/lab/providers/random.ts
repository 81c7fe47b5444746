/**
 * Lab stand-ins for the `@pulumi/random` 4.21 resource types RandomString and RandomPassword (the
 * Plugin-Framework bridge of hashicorp/terraform-provider-random). Generation follows
 * `internal/random/string.go` (CreateString): the `min*` characters are drawn first from their own sets —
 * even when that class is switched off, as the provider does — then the rest from the enabled classes, then
 * the result is shuffled; all with a cryptographic RNG. RandomPassword also carries `bcryptHash`, made like
 * the provider's generateHash: golang.org/x/crypto/bcrypt, cost 10, "$2a$", over the first 72 bytes. bcrypt is
 * implemented here (EksBlowfish, with the Blowfish tables computed from π) because no bcrypt package is
 * installed and no dependency may be added.
 *
 * Validation is the schema's: `length` ≥ 1 and ≥ the sum of the `min*`, `number`/`numeric` must agree,
 * `keepers` is a map of strings; unknown keys and values of the wrong type are refused.
 *
 * Deviations: negative `min*` values are refused (the provider would panic in make([]byte, n)); a non-ASCII
 * `overrideSpecial` is refused (the provider picks single bytes out of it, which can split characters); the
 * shuffle is Fisher–Yates rather than the provider's sort by random keys (both are random orders).
 */
import * as crypto from "crypto";
import type { ProviderResult } from "./tls";

const RANDOM_STRING = "random:index/randomString:RandomString";
const RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword";

/** The `@pulumi/random` resource type tokens these stand-ins create. */
export const RANDOM_TYPES: readonly string[] = [RANDOM_STRING, RANDOM_PASSWORD];

const NUMERIC_CHARS = "0123456789";
const LOWER_CHARS = "abcdefghijklmnopqrstuvwxyz";
const UPPER_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
/** The provider's default special characters. */
export const DEFAULT_SPECIAL_CHARS = "!@#$%&*()-_=+[]{}<>:?";

/** The Node SDK's marker for a value unknown during preview (runtime/rpc.ts `unknownValue`). */
const PULUMI_UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

const BOOL_KEYS = ["upper", "lower", "numeric", "number", "special"] as const;
const INT_KEYS = ["length", "minUpper", "minLower", "minNumeric", "minSpecial"] as const;
const INPUT_KEYS: readonly string[] = ["keepers", ...INT_KEYS, ...BOOL_KEYS, "overrideSpecial"].sort();

/**
 * Creates a random:* resource. `inputs` are plain, as the SDK sends them (no provider defaults applied).
 * Throws Error naming the resource, the input and the accepted values for any unknown input key, missing
 * required input, or value it does not understand.
 * @param type Resource type token, one of RANDOM_TYPES.
 * @param name Logical resource name (used in error messages).
 * @param inputs Inputs as the SDK registers them; `undefined` keys do not exist, `null` values count as unset.
 */
export function createRandom(type: string, name: string, inputs: Record<string, unknown>): ProviderResult {
    const fail = (message: string): never => {
        throw new Error(`${type} "${name}": ${message}`);
    };
    if (type !== RANDOM_STRING && type !== RANDOM_PASSWORD) {
        if (type.startsWith("random:")) fail(`resource type is not supported by the lab engine stand-in (supported: ${RANDOM_TYPES.join(", ")})`);
        fail(`not a random resource type (the random stand-in handles ${RANDOM_TYPES.join(", ")})`);
    }
    const params = checkStringInputs(inputs, fail);
    const result = createString(params, fail);
    const outputs: Record<string, unknown> = {
        length: params.length,
        upper: params.upper,
        lower: params.lower,
        numeric: params.numeric,
        number: params.numeric,
        special: params.special,
        minUpper: params.minUpper,
        minLower: params.minLower,
        minNumeric: params.minNumeric,
        minSpecial: params.minSpecial,
        result,
    };
    if (params.overrideSpecial !== undefined) outputs.overrideSpecial = params.overrideSpecial;
    if (params.keepers !== undefined) outputs.keepers = params.keepers;
    if (type === RANDOM_STRING) return { id: result, outputs, secretOutputs: [] };
    outputs.bcryptHash = bcryptHash(Buffer.from(result, "utf8").subarray(0, 72));
    return { id: "none", outputs, secretOutputs: ["bcryptHash", "result"] };
}

/** The plan the provider's Create reads (defaults applied). */
interface StringParams {
    length: number;
    upper: boolean;
    minUpper: number;
    lower: boolean;
    minLower: number;
    numeric: boolean;
    minNumeric: number;
    special: boolean;
    minSpecial: number;
    overrideSpecial?: string;
    keepers?: Record<string, string>;
}

function describe(v: unknown): string {
    if (Array.isArray(v)) return "a list";
    if (typeof v === "object" && v !== null) return "an object";
    return `${typeof v} ${JSON.stringify(v)}`;
}

/** Schema validation (random_string / random_password are identical here) and defaults. */
function checkStringInputs(inputs: Record<string, unknown>, fail: (m: string) => never): StringParams {
    const set: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(inputs)) {
        if (value === undefined) continue; // the SDK's rule: an undefined property does not exist
        if (JSON.stringify(value).includes(PULUMI_UNKNOWN)) fail(`input "${key}" is unknown (a preview value); a resource is created only from known inputs`);
        if (!INPUT_KEYS.includes(key)) fail(`input "${key}" is not an input of this resource (accepted: ${INPUT_KEYS.join(", ")})`);
        if (value !== null) set[key] = value;
    }
    const ints: Record<string, number | undefined> = {};
    for (const k of INT_KEYS) {
        const v = set[k];
        if (v !== undefined && (typeof v !== "number" || !Number.isSafeInteger(v))) fail(`input "${k}" must be a whole number (got ${describe(v)})`);
        ints[k] = v as number | undefined;
    }
    const bools: Record<string, boolean | undefined> = {};
    for (const k of BOOL_KEYS) {
        const v = set[k];
        if (v !== undefined && typeof v !== "boolean") fail(`input "${k}" must be a boolean (got ${describe(v)})`);
        bools[k] = v as boolean | undefined;
    }
    const overrideSpecial = set.overrideSpecial;
    if (overrideSpecial !== undefined) {
        if (typeof overrideSpecial !== "string") fail(`input "overrideSpecial" must be a string (got ${describe(overrideSpecial)})`);
        if (!/^[\x00-\x7f]*$/.test(overrideSpecial)) {
            fail(`input "overrideSpecial" = ${JSON.stringify(overrideSpecial)}: non-ASCII characters are not supported by the lab engine stand-in (the provider picks single bytes, splitting them)`);
        }
    }
    const keepers = set.keepers;
    if (keepers !== undefined) {
        if (typeof keepers !== "object" || keepers === null || Array.isArray(keepers)) fail(`input "keepers" must be a map of strings (got ${describe(keepers)})`);
        for (const [k, v] of Object.entries(keepers)) {
            if (typeof v !== "string") fail(`input "keepers.${k}" must be a string (got ${describe(v)})`);
        }
    }
    const length = ints.length;
    if (length === undefined) fail(`missing required input "length"`);
    if (length < 1) fail(`input "length" must be at least 1 (got ${length})`);
    const mins = { minUpper: ints.minUpper ?? 0, minLower: ints.minLower ?? 0, minNumeric: ints.minNumeric ?? 0, minSpecial: ints.minSpecial ?? 0 };
    for (const [k, v] of Object.entries(mins)) {
        if (v < 0) fail(`input "${k}" = ${v}: negative counts are refused by the lab engine stand-in (the provider would panic)`);
    }
    const sum = mins.minUpper + mins.minLower + mins.minNumeric + mins.minSpecial;
    if (length < sum) fail(`input "length" must be at least the sum of minUpper, minLower, minNumeric and minSpecial (${sum}), got ${length}`);
    // NumberNumericAttributePlanModifier: both set and different is an error; one set fills the other.
    if (bools.number !== undefined && bools.numeric !== undefined && bools.number !== bools.numeric) {
        fail(`inputs "number" (deprecated) and "numeric" are both set with different values (number=${bools.number}, numeric=${bools.numeric}); use numeric only`);
    }
    return {
        length,
        upper: bools.upper ?? true,
        lower: bools.lower ?? true,
        numeric: bools.numeric ?? bools.number ?? true,
        special: bools.special ?? true,
        ...mins,
        ...(overrideSpecial !== undefined ? { overrideSpecial: overrideSpecial as string } : {}),
        ...(keepers !== undefined ? { keepers: { ...(keepers as Record<string, string>) } } : {}),
    };
}

/** n characters drawn uniformly from `set` (crypto.randomInt is unbiased, like Go's rand.Int). */
function pick(set: string, n: number, fail: (m: string) => never): string[] {
    if (set === "" && n > 0) fail("Random Read Error: charSet is empty");
    return Array.from({ length: n }, () => set[crypto.randomInt(set.length)]);
}

/** CreateString (internal/random/string.go). */
function createString(p: StringParams, fail: (m: string) => never): string {
    const specialChars = p.overrideSpecial !== undefined && p.overrideSpecial !== "" ? p.overrideSpecial : DEFAULT_SPECIAL_CHARS;
    let chars = "";
    if (p.upper) chars += UPPER_CHARS;
    if (p.lower) chars += LOWER_CHARS;
    if (p.numeric) chars += NUMERIC_CHARS;
    if (p.special) chars += specialChars;
    // A Go map literal keyed by the sets: a later duplicate key overwrites an earlier one.
    const minMapping = new Map<string, number>([
        [NUMERIC_CHARS, p.minNumeric],
        [LOWER_CHARS, p.minLower],
        [UPPER_CHARS, p.minUpper],
        [specialChars, p.minSpecial],
    ]);
    const result: string[] = [];
    for (const [set, n] of minMapping) result.push(...pick(set, n, fail));
    result.push(...pick(chars, p.length - result.length, fail));
    for (let i = result.length - 1; i > 0; i--) {
        const j = crypto.randomInt(i + 1);
        [result[i], result[j]] = [result[j], result[i]];
    }
    return result.join("");
}

// ------------------------------------------------------------------------------------------------------------
// bcrypt (golang.org/x/crypto/bcrypt: GenerateFromPassword with DefaultCost 10, version "$2a$")
// ------------------------------------------------------------------------------------------------------------

/** The first `count` 32-bit words of the fractional part of π in hex (Blowfish's P-array and S-boxes). */
function piFractionWords(count: number): Uint32Array {
    const bits = BigInt(count * 32 + 64);
    const one = 1n << bits;
    const arctanInverse = (x: bigint): bigint => {
        let power = one / x;
        const x2 = x * x;
        let sum = 0n;
        for (let k = 1n, sign = 1n; power !== 0n; k += 2n, sign = -sign) {
            sum += (sign * power) / k;
            power /= x2;
        }
        return sum;
    };
    const frac = 16n * arctanInverse(5n) - 4n * arctanInverse(239n) - 3n * one;
    const words = new Uint32Array(count);
    for (let i = 0; i < count; i++) words[i] = Number((frac >> (bits - BigInt(32 * (i + 1)))) & 0xffffffffn);
    return words;
}

let blowfishTables: Uint32Array | undefined;

/** P (18 words) then S0..S3 (4 × 256 words), computed once and checked against Blowfish's published ends. */
function initialTables(): Uint32Array {
    if (!blowfishTables) {
        const t = piFractionWords(18 + 1024);
        if (t[0] !== 0x243f6a88 || t[17] !== 0x8979fb1b || t[18] !== 0xd1310ba6 || t[18 + 1023] !== 0x3ac372e6) {
            throw new Error("bcrypt: computed Blowfish tables do not match the published constants");
        }
        blowfishTables = t;
    }
    return blowfishTables;
}

/** Blowfish state: p = words 0..17, s = S0..S3 at 18 + 256·i. */
interface Blowfish {
    p: Uint32Array;
    s: Uint32Array;
}

/** encryptBlock on lr = [l, r], in place (Go's 16-round Feistel; returns xr, xl). */
function encryptBlock(bf: Blowfish, lr: Uint32Array): void {
    const p = bf.p;
    const s = bf.s;
    let l = lr[0];
    let r = lr[1];
    l ^= p[0];
    for (let i = 1; i <= 16; i += 2) {
        r ^= ((((s[l >>> 24] + s[256 | ((l >>> 16) & 0xff)]) ^ s[512 | ((l >>> 8) & 0xff)]) + s[768 | (l & 0xff)]) ^ p[i]);
        l ^= ((((s[r >>> 24] + s[256 | ((r >>> 16) & 0xff)]) ^ s[512 | ((r >>> 8) & 0xff)]) + s[768 | (r & 0xff)]) ^ p[i + 1]);
    }
    r ^= p[17];
    lr[0] = r >>> 0;
    lr[1] = l >>> 0;
}

/** getNextWord: four bytes of `b`, cycling, from position state[0]. */
function nextWord(b: Buffer, state: { j: number }): number {
    let w = 0;
    for (let k = 0; k < 4; k++) {
        w = ((w << 8) | b[state.j]) >>> 0;
        state.j = (state.j + 1) % b.length;
    }
    return w;
}

/** ExpandKey / expandKeyWithSalt (x/crypto/blowfish); salt undefined means the unsalted ExpandKey. */
function expandKey(bf: Blowfish, key: Buffer, salt: Buffer | undefined): void {
    const kj = { j: 0 };
    for (let i = 0; i < 18; i++) bf.p[i] = (bf.p[i] ^ nextWord(key, kj)) >>> 0;
    const sj = { j: 0 };
    const lr = new Uint32Array(2);
    const fill = (table: Uint32Array, count: number) => {
        for (let i = 0; i < count; i += 2) {
            if (salt) {
                lr[0] ^= nextWord(salt, sj);
                lr[1] ^= nextWord(salt, sj);
            }
            encryptBlock(bf, lr);
            table[i] = lr[0];
            table[i + 1] = lr[1];
        }
    };
    fill(bf.p, 18);
    fill(bf.s, 1024);
}

const BCRYPT_ALPHABET = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const STD_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** bcrypt's base64 (its own alphabet, no padding). */
function bcryptBase64(b: Buffer): string {
    return [...b.toString("base64").replace(/=+$/, "")].map((c) => BCRYPT_ALPHABET[STD_ALPHABET.indexOf(c)]).join("");
}

/**
 * bcrypt.GenerateFromPassword(password, cost): "$2a$" + cost + "$" + 22-char salt + 31-char hash.
 * Exported for tests; the password must be at most 72 bytes, as Go requires.
 * @param password At most 72 bytes.
 * @param cost Log2 of the key-expansion rounds (Go's DefaultCost is 10).
 * @param salt 16 bytes (random by default).
 */
export function bcryptHash(password: Buffer, cost = 10, salt: Buffer = crypto.randomBytes(16)): string {
    if (password.length > 72) throw new Error("bcrypt: password length exceeds 72 bytes");
    if (cost < 4 || cost > 31) throw new Error(`crypto/bcrypt: cost ${cost} is outside allowed inclusive range 4..31`);
    const key = Buffer.concat([password, Buffer.from([0])]);
    const tables = initialTables();
    const bf: Blowfish = { p: tables.slice(0, 18), s: tables.slice(18) };
    expandKey(bf, key, salt);
    for (let i = 0; i < 2 ** cost; i++) {
        expandKey(bf, key, undefined);
        expandKey(bf, salt, undefined);
    }
    const data = Buffer.from("OrpheanBeholderScryDoubt", "latin1");
    const lr = new Uint32Array(2);
    for (let i = 0; i < 24; i += 8) {
        lr[0] = data.readUInt32BE(i);
        lr[1] = data.readUInt32BE(i + 4);
        for (let j = 0; j < 64; j++) encryptBlock(bf, lr);
        data.writeUInt32BE(lr[0], i);
        data.writeUInt32BE(lr[1], i + 4);
    }
    return `$2a$${String(cost).padStart(2, "0")}$${bcryptBase64(salt)}${bcryptBase64(data.subarray(0, 23))}`;
}
