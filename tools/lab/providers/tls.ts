/**
 * Lab stand-ins for the `@pulumi/tls` 5.6 resource types (the Plugin-Framework bridge of
 * hashicorp/terraform-provider-tls). Each `create*` does what the provider's `Create` does, with real keys
 * and real DER, and reproduces what the Go code it calls does: `crypto/x509.CreateCertificate` and
 * `CreateCertificateRequest` (extension order and criticality, PrintableString/UTF8String choice, SET
 * sorting, AKI/SKI rules), `encoding/pem`, `net.ParseIP`, `net/url.Parse`, `x/crypto/ssh` (authorized key,
 * fingerprints, `openssh-key-v1`) and the provider's `hashForState` ids. Validation is the schema's
 * (required inputs, `OneOf`, `AtLeast`) plus what the SDK can send; anything else is refused, never ignored.
 *
 * Sources: terraform-provider-tls `internal/provider/{common_cert,common_key,common,types,
 * resource_*}.go`, `@pulumi/tls` 5.6.1 SDK constructors, Go `crypto/x509`, `encoding/asn1`, `net/url`,
 * `net/netip`, `x/crypto/ssh/keys.go`. The replacement and renewal rules are in docs/engine-fidelity.md.
 *
 * Deviations that could not be avoided (each also noted where it happens):
 * - `validityStartTime`/`validityEndTime`: the provider writes Go's `time.Time.MarshalText` (RFC 3339 with up
 *   to nanoseconds, in the provider process's local zone). The stand-in writes UTC with JavaScript's
 *   millisecond precision (`2026-05-01T10:00:00.123Z`); the certificate's own DER times are identical.
 * - The write-only inputs (`privateKeyPemWo`, `caPrivateKeyPemWo` and their `*WoVersion`) are refused.
 * - URIs whose Go re-serialisation (`url.URL.String()`) could differ from the input (non-ASCII, characters
 *   Go would percent-encode, `%` in the host, userinfo beyond `[A-Za-z0-9-._~]`) are refused.
 * - Certificate requests whose public key is not RSA, ECDSA P-224/256/384/521 or Ed25519 are refused
 *   (Go could also certify X25519 keys).
 * - The "CA certificate is not a CA" warning of LocallySignedCert is not reported (the result has no
 *   warnings channel); the certificate is issued, as the provider does.
 * - Refused where the provider would not fail cleanly: `rsaBits` OpenSSL cannot generate (above 16384; Go
 *   would try), `validityPeriodHours` beyond Go's time.Duration (Go would wrap NotAfter), and preview's
 *   unknown-value marker in any input (the real engine never calls Create with unknowns).
 * - `secretOutputs` lists the secret names among the outputs present (e.g. not the absent `privateKeyPemWo`).
 */
import * as crypto from "crypto";

/** What a stand-in returns for a created resource. */
export interface ProviderResult {
    /** The resource id the real provider would report. */
    id: string;
    /** Every output the real provider reports (inputs echoed, plus computed outputs), as plain values. */
    outputs: Record<string, unknown>;
    /** Names of outputs the real provider/SDK marks secret (e.g. ["privateKeyPem", "privateKeyPemPkcs8", "privateKeyOpenssh"]). */
    secretOutputs: string[];
}

const PRIVATE_KEY = "tls:index/privateKey:PrivateKey";
const SELF_SIGNED_CERT = "tls:index/selfSignedCert:SelfSignedCert";
const CERT_REQUEST = "tls:index/certRequest:CertRequest";
const LOCALLY_SIGNED_CERT = "tls:index/locallySignedCert:LocallySignedCert";

/** The `@pulumi/tls` resource type tokens these stand-ins create. */
export const TLS_TYPES: readonly string[] = [PRIVATE_KEY, SELF_SIGNED_CERT, CERT_REQUEST, LOCALLY_SIGNED_CERT];

/**
 * Creates a tls:* resource. `inputs` are plain (secrets already unwrapped), as the SDK sends them (no provider
 * defaults applied). Throws Error naming the resource, the input and the accepted values for any unknown input
 * key, missing required input, or value it does not understand, and the provider's own error for anything the
 * real `Create` rejects.
 * @param type Resource type token, one of TLS_TYPES.
 * @param name Logical resource name (used in error messages).
 * @param inputs Inputs as the SDK registers them; `undefined` keys do not exist, `null` values count as unset.
 * @param opts `now` overrides the clock for certificates (NotBefore).
 */
export async function createTls(
    type: string,
    name: string,
    inputs: Record<string, unknown>,
    opts?: { now?: Date },
): Promise<ProviderResult> {
    const ctx: Ctx = { type, name };
    const now = opts?.now ?? new Date();
    switch (type) {
        case PRIVATE_KEY:
            return createPrivateKey(ctx, inputs);
        case CERT_REQUEST:
            return createCertRequest(ctx, inputs);
        case SELF_SIGNED_CERT:
            return createSelfSignedCert(ctx, inputs, now);
        case LOCALLY_SIGNED_CERT:
            return createLocallySignedCert(ctx, inputs, now);
    }
    if (type.startsWith("tls:")) {
        throw new Error(`${type} "${name}": resource type is not supported by the lab engine stand-in (supported: ${TLS_TYPES.join(", ")})`);
    }
    throw new Error(`${type} "${name}": not a tls resource type (the tls stand-in handles ${TLS_TYPES.join(", ")})`);
}

// ------------------------------------------------------------------------------------------------------------
// Input validation (schema + SDK keys)
// ------------------------------------------------------------------------------------------------------------

/** Resource identity for error messages. */
interface Ctx {
    type: string;
    name: string;
}

function fail(ctx: Ctx, message: string): never {
    throw new Error(`${ctx.type} "${ctx.name}": ${message}`);
}

type FieldKind = "string" | "int" | "bool" | "stringList" | "subject";

interface FieldSpec {
    kind: FieldKind;
    required?: boolean;
    /** stringvalidator.OneOf on the value. */
    oneOf?: readonly string[];
    /** listvalidator.ValuesAre(stringvalidator.OneOf(...)). */
    elementsOneOf?: readonly string[];
    /** listvalidator.ValueStringsAre(stringvalidator.LengthAtLeast(n)). */
    elementMinLength?: number;
    /** int64validator.AtLeast(n). */
    atLeast?: number;
    /** A real input the stand-in refuses, with the reason. */
    unsupported?: string;
    /** Extra text for a missing required input. */
    requiredNote?: string;
}

type Schema = Record<string, FieldSpec>;

/** Subject block fields, as `@pulumi/tls` types/input.d.ts names them. */
const SUBJECT_FIELDS = [
    "commonName",
    "country",
    "emailAddress",
    "locality",
    "organization",
    "organizationalUnit",
    "postalCode",
    "province",
    "serialNumber",
    "streetAddresses",
] as const;

/** The subject block as the SDK sends it. */
interface SubjectInput {
    commonName?: string;
    country?: string;
    emailAddress?: string;
    locality?: string;
    organization?: string;
    organizationalUnit?: string;
    postalCode?: string;
    province?: string;
    serialNumber?: string;
    streetAddresses?: string[];
}

function describeValue(v: unknown): string {
    if (Array.isArray(v)) return "a list";
    if (typeof v === "object" && v !== null) return "an object";
    return `${typeof v} ${JSON.stringify(v)}`;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
    return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isSet(v: unknown): boolean {
    return v !== undefined && v !== null;
}

/** Checks one subject block; returns it without unset fields. */
function checkSubject(ctx: Ctx, key: string, v: unknown): SubjectInput {
    if (!isPlainObject(v)) fail(ctx, `input "${key}" must be an object (got ${describeValue(v)})`);
    const out: Record<string, unknown> = {};
    for (const [k, val] of Object.entries(v)) {
        if (!(SUBJECT_FIELDS as readonly string[]).includes(k)) {
            fail(ctx, `input "${key}.${k}" is not a field of the subject block (accepted: ${SUBJECT_FIELDS.join(", ")})`);
        }
        if (!isSet(val)) continue;
        if (k === "streetAddresses") {
            if (!Array.isArray(val) || !val.every((e) => typeof e === "string")) {
                fail(ctx, `input "${key}.${k}" must be a list of strings (got ${describeValue(val)})`);
            }
        } else if (typeof val !== "string") {
            fail(ctx, `input "${key}.${k}" must be a string (got ${describeValue(val)})`);
        }
        out[k] = val;
    }
    return out as SubjectInput;
}

/** Checks one input value against its field spec. */
function checkField(ctx: Ctx, key: string, spec: FieldSpec, v: unknown): unknown {
    switch (spec.kind) {
        case "string":
            if (typeof v !== "string") fail(ctx, `input "${key}" must be a string (got ${describeValue(v)})`);
            if (spec.oneOf && !spec.oneOf.includes(v)) {
                fail(ctx, `input "${key}" = ${JSON.stringify(v)} is not accepted; accepted values: ${spec.oneOf.join(", ")}`);
            }
            return v;
        case "int":
            if (typeof v !== "number" || !Number.isSafeInteger(v)) fail(ctx, `input "${key}" must be a whole number (got ${describeValue(v)})`);
            if (spec.atLeast !== undefined && v < spec.atLeast) fail(ctx, `input "${key}" must be at least ${spec.atLeast} (got ${v})`);
            return v;
        case "bool":
            if (typeof v !== "boolean") fail(ctx, `input "${key}" must be a boolean (got ${describeValue(v)})`);
            return v;
        case "stringList": {
            if (!Array.isArray(v)) fail(ctx, `input "${key}" must be a list of strings (got ${describeValue(v)})`);
            v.forEach((e, i) => {
                if (typeof e !== "string") fail(ctx, `input "${key}[${i}]" must be a string (got ${describeValue(e)})`);
                if (spec.elementsOneOf && !spec.elementsOneOf.includes(e)) {
                    fail(ctx, `input "${key}[${i}]" = ${JSON.stringify(e)} is not accepted; accepted values: ${spec.elementsOneOf.join(", ")}`);
                }
                if (spec.elementMinLength !== undefined && e.length < spec.elementMinLength) {
                    fail(ctx, `input "${key}[${i}]" must be at least ${spec.elementMinLength} character(s) long (got ${JSON.stringify(e)})`);
                }
            });
            return [...v];
        }
        case "subject":
            return checkSubject(ctx, key, v);
    }
}

/** The Node SDK's marker for a value unknown during preview (runtime/rpc.ts `unknownValue`). */
const PULUMI_UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

function containsUnknown(v: unknown): boolean {
    if (v === PULUMI_UNKNOWN) return true;
    if (Array.isArray(v)) return v.some(containsUnknown);
    return isPlainObject(v) && Object.values(v).some(containsUnknown);
}

/**
 * Validates inputs against a schema: unknown keys, refused keys, missing required keys and bad values all
 * throw. Keys whose value is `undefined` do not exist (the SDK's rule: its constructors list every output
 * as `undefined`); `null` counts as unset. Returns the set inputs only.
 */
function checkInputs(ctx: Ctx, schema: Schema, inputs: Record<string, unknown>): Record<string, unknown> {
    const accepted = Object.keys(schema).filter((k) => !schema[k].unsupported);
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(inputs)) {
        if (value === undefined) continue;
        if (containsUnknown(value)) fail(ctx, `input "${key}" is unknown (a preview value); a resource is created only from known inputs`);
        const spec = Object.prototype.hasOwnProperty.call(schema, key) ? schema[key] : undefined;
        if (!spec) fail(ctx, `input "${key}" is not an input of this resource (accepted: ${accepted.join(", ")})`);
        if (value === null) continue;
        if (spec.unsupported) fail(ctx, `input "${key}" is not supported by the lab engine stand-in (${spec.unsupported})`);
        out[key] = checkField(ctx, key, spec, value);
    }
    for (const key of accepted) {
        if (schema[key].required && !(key in out)) {
            fail(ctx, `missing required input "${key}"${schema[key].requiredNote ? ` (${schema[key].requiredNote})` : ""}`);
        }
    }
    return out;
}

function str(v: Record<string, unknown>, k: string): string | undefined {
    const x = v[k];
    return typeof x === "string" ? x : undefined;
}

function int(v: Record<string, unknown>, k: string): number | undefined {
    const x = v[k];
    return typeof x === "number" ? x : undefined;
}

function bool(v: Record<string, unknown>, k: string): boolean | undefined {
    const x = v[k];
    return typeof x === "boolean" ? x : undefined;
}

function list(v: Record<string, unknown>, k: string): string[] | undefined {
    const x = v[k];
    return Array.isArray(x) ? x.filter((e): e is string => typeof e === "string") : undefined;
}

// ------------------------------------------------------------------------------------------------------------
// DER writing and reading (the subset X.509 needs; DER rules as Go's encoding/asn1 applies them)
// ------------------------------------------------------------------------------------------------------------

function derLength(n: number): Buffer {
    if (n < 0x80) return Buffer.from([n]);
    const bytes: number[] = [];
    for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
    return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, ...parts: Buffer[]): Buffer {
    const body = Buffer.concat(parts);
    return Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);
}

function derSequence(...parts: Buffer[]): Buffer {
    return tlv(0x30, ...parts);
}

/** SET OF with its elements in DER order (Go's encoding/asn1 sorts SET OF since Go 1.15). */
function derSetOf(parts: Buffer[]): Buffer {
    return tlv(0x31, ...[...parts].sort((a, b) => Buffer.compare(a, b)));
}

const DER_TRUE = Buffer.from([0x01, 0x01, 0xff]);
const DER_NULL = Buffer.from([0x05, 0x00]);

/** INTEGER from a non-negative big-endian magnitude (minimal two's complement). */
function derUnsigned(magnitude: Buffer): Buffer {
    let i = 0;
    while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
    let m = magnitude.subarray(i);
    if (m.length === 0) m = Buffer.from([0]);
    if (m[0] & 0x80) m = Buffer.concat([Buffer.from([0]), m]);
    return tlv(0x02, m);
}

function bigintToBytes(v: bigint): Buffer {
    let hex = v.toString(16);
    if (hex.length % 2) hex = `0${hex}`;
    return Buffer.from(hex, "hex");
}

function derSmallInt(n: number): Buffer {
    return derUnsigned(bigintToBytes(BigInt(n)));
}

function derOid(oid: string): Buffer {
    const arcs = oid.split(".").map((a) => BigInt(a));
    const out: number[] = [];
    const values = [arcs[0] * 40n + arcs[1], ...arcs.slice(2)];
    for (const value of values) {
        const chunk: number[] = [Number(value & 0x7fn)];
        for (let v = value >> 7n; v > 0n; v >>= 7n) chunk.unshift(Number(v & 0x7fn) | 0x80);
        out.push(...chunk);
    }
    return tlv(0x06, Buffer.from(out));
}

function derOctetString(b: Buffer): Buffer {
    return tlv(0x04, b);
}

function derBitString(b: Buffer, unusedBits = 0): Buffer {
    return tlv(0x03, Buffer.from([unusedBits]), b);
}

function pad2(n: number): string {
    return String(n).padStart(2, "0");
}

/** Go marshals time.Time as UTCTime for 1950..2049 and GeneralizedTime otherwise, in UTC, whole seconds. */
function derTime(d: Date): Buffer {
    const y = d.getUTCFullYear();
    const rest = `${pad2(d.getUTCMonth() + 1)}${pad2(d.getUTCDate())}${pad2(d.getUTCHours())}${pad2(d.getUTCMinutes())}${pad2(d.getUTCSeconds())}Z`;
    if (y >= 1950 && y < 2050) return tlv(0x17, Buffer.from(`${pad2(y % 100)}${rest}`, "latin1"));
    if (y < 0 || y > 9999) throw new Error("asn1: cannot represent time as GeneralizedTime");
    return tlv(0x18, Buffer.from(`${String(y).padStart(4, "0")}${rest}`, "latin1"));
}

/** One parsed TLV. */
interface DerNode {
    tag: number;
    content: Buffer;
    full: Buffer;
}

function derRead(buf: Buffer, pos: number): { node: DerNode; end: number } {
    if (pos + 2 > buf.length) throw new Error("asn1: syntax error: data truncated");
    const tag = buf[pos];
    if ((tag & 0x1f) === 0x1f) throw new Error("asn1: high-tag-number form is not supported here");
    let len = buf[pos + 1];
    let header = 2;
    if (len & 0x80) {
        const n = len & 0x7f;
        if (n === 0) throw new Error("asn1: syntax error: indefinite length found (not DER)");
        if (n > 4 || pos + 2 + n > buf.length) throw new Error("asn1: syntax error: length too large or truncated");
        if (buf[pos + 2] === 0) throw new Error("asn1: structure error: superfluous leading zeros in length");
        len = 0;
        for (let i = 0; i < n; i++) len = len * 256 + buf[pos + 2 + i];
        if (len < 0x80) throw new Error("asn1: structure error: non-minimal length");
        header += n;
    }
    const end = pos + header + len;
    if (end > buf.length) throw new Error("asn1: syntax error: data truncated");
    return { node: { tag, content: buf.subarray(pos + header, end), full: buf.subarray(pos, end) }, end };
}

function derParse(buf: Buffer): DerNode {
    const { node, end } = derRead(buf, 0);
    if (end !== buf.length) throw new Error("asn1: syntax error: trailing data");
    return node;
}

function derChildren(node: DerNode): DerNode[] {
    const out: DerNode[] = [];
    for (let pos = 0; pos < node.content.length; ) {
        const r = derRead(node.content, pos);
        out.push(r.node);
        pos = r.end;
    }
    return out;
}

function expectTag(node: DerNode | undefined, tag: number, what: string): DerNode {
    if (!node || node.tag !== tag) throw new Error(`asn1: structure error: ${what}: unexpected tag`);
    return node;
}

function derOidString(content: Buffer): string {
    const arcs: bigint[] = [];
    let v = 0n;
    for (const b of content) {
        v = (v << 7n) | BigInt(b & 0x7f);
        if (!(b & 0x80)) {
            arcs.push(v);
            v = 0n;
        }
    }
    if (arcs.length === 0) throw new Error("asn1: syntax error: empty OID");
    const first = arcs[0] < 80n ? arcs[0] / 40n : 2n;
    return [first, arcs[0] - first * 40n, ...arcs.slice(1)].join(".");
}

// ------------------------------------------------------------------------------------------------------------
// PEM (Go encoding/pem)
// ------------------------------------------------------------------------------------------------------------

/** pem.EncodeToMemory: 64-column base64, every line (the last too) ending in "\n". */
function pemEncode(type: string, der: Buffer): string {
    const b64 = der.toString("base64");
    const lines: string[] = [];
    for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
    return `-----BEGIN ${type}-----\n${lines.map((l) => `${l}\n`).join("")}-----END ${type}-----\n`;
}

interface PemBlock {
    type: string;
    headers: Record<string, string>;
    bytes: Buffer;
}

function getLine(data: string): [string, string] {
    const i = data.indexOf("\n");
    const line = i < 0 ? data : data.slice(0, i);
    const rest = i < 0 ? "" : data.slice(i + 1);
    return [line.replace(/[ \t\r]+$/, ""), rest];
}

/** Go's base64.StdEncoding.Decode on PEM text: "\r"/"\n" skipped, padding required. */
function strictBase64(s: string): Buffer | undefined {
    const clean = s.replace(/[\r\n]/g, "");
    if (clean.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(clean)) return undefined;
    return Buffer.from(clean, "base64");
}

/** pem.Decode: the first well-formed block anywhere in the text, or undefined. */
function pemDecode(data: string): PemBlock | undefined {
    let rest = data;
    for (;;) {
        if (rest.startsWith("-----BEGIN ")) {
            rest = rest.slice("-----BEGIN ".length);
        } else {
            const i = rest.indexOf("\n-----BEGIN ");
            if (i < 0) return undefined;
            rest = rest.slice(i + "\n-----BEGIN ".length);
        }
        let typeLine: string;
        [typeLine, rest] = getLine(rest);
        if (!typeLine.endsWith("-----")) continue;
        typeLine = typeLine.slice(0, -5);
        const headers: Record<string, string> = {};
        let truncated = false;
        for (;;) {
            if (rest.length === 0) {
                truncated = true;
                break;
            }
            const [line, next] = getLine(rest);
            const colon = line.indexOf(":");
            if (colon < 0) break;
            headers[line.slice(0, colon).trim()] = line.slice(colon + 1).trim();
            rest = next;
        }
        if (truncated) return undefined;
        let endIndex: number;
        let trailerIndex: number;
        if (Object.keys(headers).length === 0 && rest.startsWith("-----END ")) {
            endIndex = 0;
            trailerIndex = "-----END ".length;
        } else {
            endIndex = rest.indexOf("\n-----END ");
            trailerIndex = endIndex + "\n-----END ".length;
        }
        if (endIndex < 0) continue;
        const trailer = rest.slice(trailerIndex);
        const trailerLen = typeLine.length + 5;
        if (trailer.length < trailerLen) continue;
        if (!trailer.startsWith(typeLine) || trailer.slice(typeLine.length, trailerLen) !== "-----") continue;
        if (getLine(trailer.slice(trailerLen))[0].length !== 0) continue;
        const bytes = strictBase64(rest.slice(0, endIndex).replace(/[ \t]/g, ""));
        if (!bytes) continue;
        return { type: typeLine, headers, bytes };
    }
}

// ------------------------------------------------------------------------------------------------------------
// Keys
// ------------------------------------------------------------------------------------------------------------

type KeyAlgorithm = "RSA" | "ECDSA" | "ED25519";
type CurveName = "P224" | "P256" | "P384" | "P521";

const ALGORITHMS: readonly KeyAlgorithm[] = ["RSA", "ECDSA", "ED25519"];
const CURVE_NAMES: readonly CurveName[] = ["P224", "P256", "P384", "P521"];

/** Per curve: OpenSSL name, named-curve OID, the hash and signature OID Go's signingParamsForKey picks, and the SSH name. */
const CURVES: Record<CurveName, { openssl: string; hash: string; sigOid: string; ssh?: string }> = {
    P224: { openssl: "secp224r1", hash: "sha256", sigOid: "1.2.840.10045.4.3.2" },
    P256: { openssl: "prime256v1", hash: "sha256", sigOid: "1.2.840.10045.4.3.2", ssh: "nistp256" },
    P384: { openssl: "secp384r1", hash: "sha384", sigOid: "1.2.840.10045.4.3.3", ssh: "nistp384" },
    P521: { openssl: "secp521r1", hash: "sha512", sigOid: "1.2.840.10045.4.3.4", ssh: "nistp521" },
};

const OID_SHA256_WITH_RSA = "1.2.840.113549.1.1.11";
const OID_ED25519 = "1.3.101.112";

/** A private key as the provider holds it after parsing. */
interface ParsedPrivateKey {
    key: crypto.KeyObject;
    algorithm: KeyAlgorithm;
    curve?: CurveName;
}

function curveOf(key: crypto.KeyObject): CurveName | undefined {
    const named = key.asymmetricKeyDetails?.namedCurve;
    return CURVE_NAMES.find((c) => CURVES[c].openssl === named);
}

/** Classifies a node KeyObject the way Go's parsers and privateKeyToAlgorithm would accept it. */
function classifyKey(key: crypto.KeyObject): { algorithm: KeyAlgorithm; curve?: CurveName } {
    switch (key.asymmetricKeyType) {
        case "rsa":
            return { algorithm: "RSA" };
        case "ed25519":
            return { algorithm: "ED25519" };
        case "ec": {
            const curve = curveOf(key);
            if (!curve) throw new Error("x509: unknown elliptic curve");
            return { algorithm: "ECDSA", curve };
        }
        default:
            throw new Error(`unsupported private key type: ${key.asymmetricKeyType ?? "unknown"}`);
    }
}

/** parsePrivateKeyPEM (common_key.go): RSA PRIVATE KEY (PKCS#1), EC PRIVATE KEY (SEC 1), PRIVATE KEY (PKCS#8). */
function parsePrivateKeyPem(pem: string): ParsedPrivateKey {
    const block = pemDecode(pem);
    if (!block) throw new Error(`failed to decode PEM block: decoded bytes 0, undecoded ${Buffer.byteLength(pem)}`);
    const formats: Record<string, "pkcs1" | "sec1" | "pkcs8"> = { "RSA PRIVATE KEY": "pkcs1", "EC PRIVATE KEY": "sec1", "PRIVATE KEY": "pkcs8" };
    const known = ["PUBLIC KEY", "CERTIFICATE", "CERTIFICATE REQUEST", ...Object.keys(formats)];
    if (!known.includes(block.type)) throw new Error(`unsupported PEM preamble/type: ${block.type}`);
    const format = formats[block.type];
    if (!format) throw new Error(`unable to determine parser for PEM preamble: ${block.type}`);
    let key: crypto.KeyObject;
    try {
        if (Object.keys(block.headers).length > 0) throw new Error("PEM headers (an encrypted key?) are not understood");
        key = crypto.createPrivateKey({ key: block.bytes, format: "der", type: format });
    } catch (e) {
        throw new Error(`failed to parse private key given PEM preamble '${block.type}': ${(e as Error).message}`);
    }
    if (format === "pkcs1" && key.asymmetricKeyType !== "rsa") throw new Error(`failed to parse private key given PEM preamble '${block.type}'`);
    return { key, ...classifyKey(key) };
}

/** Go 1.24+ refuses RSA keys under 1024 bits for generation and for every signature. */
function checkRsaSize(bits: number): void {
    if (bits < 1024) throw new Error(`crypto/rsa: ${bits}-bit keys are insecure (see https://go.dev/pkg/crypto/rsa#hdr-Minimum_key_size)`);
}

/** signingParamsForKey + the signer: RSA → SHA256WithRSA, ECDSA → by curve, Ed25519 → PureEd25519. */
function signerFor(k: ParsedPrivateKey): { algorithmIdentifier: Buffer; sign: (data: Buffer) => Buffer } {
    switch (k.algorithm) {
        case "RSA":
            checkRsaSize(k.key.asymmetricKeyDetails?.modulusLength ?? 0);
            return {
                algorithmIdentifier: derSequence(derOid(OID_SHA256_WITH_RSA), DER_NULL),
                sign: (data) => crypto.sign("sha256", data, k.key),
            };
        case "ECDSA": {
            const c = CURVES[k.curve ?? "P256"];
            return {
                algorithmIdentifier: derSequence(derOid(c.sigOid)),
                sign: (data) => crypto.sign(c.hash, data, { key: k.key, dsaEncoding: "der" }),
            };
        }
        case "ED25519":
            return { algorithmIdentifier: derSequence(derOid(OID_ED25519)), sign: (data) => crypto.sign(null, data, k.key) };
    }
}

/** The subjectPublicKey BIT STRING contents of an SPKI. */
function spkiKeyBits(spki: Buffer): Buffer {
    const [, bits] = derChildren(derParse(spki));
    return expectTag(bits, 0x03, "subjectPublicKey").content.subarray(1);
}

/** A public key as x509 marshals it (SPKI DER), with the provider's generateSubjectKeyID. */
interface PublicKeyInfo {
    key: crypto.KeyObject;
    spki: Buffer;
    algorithm: KeyAlgorithm;
    curve?: CurveName;
}

function publicKeyInfo(pub: crypto.KeyObject): PublicKeyInfo {
    const spki = pub.export({ type: "spki", format: "der" });
    return { key: pub, spki, ...classifyKey(pub) };
}

/**
 * generateSubjectKeyID (common_cert.go): SHA-1 of asn1.Marshal(rsa.PublicKey) (PKCS#1), of the uncompressed
 * EC point, or of asn1.Marshal(ed25519.PublicKey) — an OCTET STRING around the 32 key bytes.
 */
function subjectKeyId(pub: PublicKeyInfo): Buffer {
    let material: Buffer;
    if (pub.algorithm === "RSA") material = pub.key.export({ type: "pkcs1", format: "der" });
    else if (pub.algorithm === "ECDSA") material = spkiKeyBits(pub.spki);
    else material = derOctetString(spkiKeyBits(pub.spki));
    return crypto.createHash("sha1").update(material).digest();
}

// ------------------------------------------------------------------------------------------------------------
// hashForState (ids) — sha1 hex of strings.TrimSpace(value)
// ------------------------------------------------------------------------------------------------------------

const UTF8_FATAL = new TextDecoder("utf-8", { fatal: true });

function isGoSpace(r: number): boolean {
    if (r <= 0xff) return r === 0x09 || r === 0x0a || r === 0x0b || r === 0x0c || r === 0x0d || r === 0x20 || r === 0x85 || r === 0xa0;
    return r === 0x1680 || (r >= 0x2000 && r <= 0x200a) || r === 0x2028 || r === 0x2029 || r === 0x202f || r === 0x205f || r === 0x3000;
}

/** utf8.DecodeLastRune: [rune, size], with rune -1 for an invalid encoding (size 1). */
function decodeLastRune(b: Buffer, end: number): [number, number] {
    const last = b[end - 1];
    if (last < 0x80) return [last, 1];
    let start = end - 1;
    const lim = Math.max(end - 4, 0);
    for (start--; start >= lim; start--) if ((b[start] & 0xc0) !== 0x80) break;
    if (start < 0) start = 0;
    try {
        const s = UTF8_FATAL.decode(b.subarray(start, end));
        const cp = s.codePointAt(0);
        if (cp !== undefined && String.fromCodePoint(cp) === s) return [cp, end - start];
    } catch {
        // invalid UTF-8: RuneError, width 1
    }
    return [-1, 1];
}

/** utf8.DecodeRune at `start`: [rune, size], with rune -1 for an invalid encoding (size 1). */
function decodeRune(b: Buffer, start: number): [number, number] {
    if (b[start] < 0x80) return [b[start], 1];
    for (let size = 2; size <= 4 && start + size <= b.length; size++) {
        try {
            const s = UTF8_FATAL.decode(b.subarray(start, start + size));
            const cp = s.codePointAt(0);
            if (cp !== undefined && String.fromCodePoint(cp) === s) return [cp, size];
        } catch {
            // not a complete sequence of this length
        }
    }
    return [-1, 1];
}

/** Go strings.TrimSpace on raw bytes: unicode.IsSpace runes trimmed from both ends (invalid UTF-8 is not space). */
function goTrimSpace(b: Buffer): Buffer {
    let start = 0;
    while (start < b.length) {
        const [r, size] = decodeRune(b, start);
        if (r < 0 || !isGoSpace(r)) break;
        start += size;
    }
    let stop = b.length;
    while (stop > start) {
        const [r, size] = decodeLastRune(b, stop);
        if (r < 0 || !isGoSpace(r)) break;
        stop -= size;
    }
    return b.subarray(start, stop);
}

/**
 * hashForState (common.go), the provider's id for PrivateKey (over the PKIX public key DER) and CertRequest
 * (over the request DER): hex SHA-1 of the value after Go's strings.TrimSpace; "" for an empty value.
 * @param value The bytes the provider hashes.
 */
export function hashForState(value: Buffer): string {
    if (value.length === 0) return "";
    return crypto.createHash("sha1").update(goTrimSpace(value)).digest("hex");
}

// ------------------------------------------------------------------------------------------------------------
// SSH encodings (x/crypto/ssh)
// ------------------------------------------------------------------------------------------------------------

function sshUint32(n: number): Buffer {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n >>> 0);
    return b;
}

function sshString(b: Buffer | string): Buffer {
    const bytes = typeof b === "string" ? Buffer.from(b) : b;
    return Buffer.concat([sshUint32(bytes.length), bytes]);
}

/** mpint from an unsigned big-endian magnitude. */
function sshMpint(magnitude: Buffer): Buffer {
    let i = 0;
    while (i < magnitude.length && magnitude[i] === 0) i++;
    let m = magnitude.subarray(i);
    if (m.length > 0 && m[0] & 0x80) m = Buffer.concat([Buffer.from([0]), m]);
    return sshString(m);
}

/** INTEGER contents → unsigned magnitude (for values known to be non-negative). */
function intMagnitude(node: DerNode): Buffer {
    return expectTag(node, 0x02, "INTEGER").content;
}

/** The SSH public key blob (ssh.NewPublicKey(...).Marshal()), or undefined where x/crypto/ssh has none (P-224). */
function sshPublicBlob(pub: PublicKeyInfo): Buffer | undefined {
    if (pub.algorithm === "RSA") {
        const [n, e] = derChildren(derParse(pub.key.export({ type: "pkcs1", format: "der" })));
        return Buffer.concat([sshString("ssh-rsa"), sshMpint(intMagnitude(e)), sshMpint(intMagnitude(n))]);
    }
    if (pub.algorithm === "ED25519") return Buffer.concat([sshString("ssh-ed25519"), sshString(spkiKeyBits(pub.spki))]);
    const sshCurve = CURVES[pub.curve ?? "P224"].ssh;
    if (!sshCurve) return undefined;
    return Buffer.concat([sshString(`ecdsa-sha2-${sshCurve}`), sshString(sshCurve), sshString(spkiKeyBits(pub.spki))]);
}

/**
 * ssh.MarshalPrivateKey(key, "") → "OPENSSH PRIVATE KEY" (openssh-key-v1, cipher/kdf "none", comment "",
 * padding 1, 2, 3… to a multiple of 8), PEM-encoded by encoding/pem.
 */
function opensshPrivateKey(priv: crypto.KeyObject, pub: PublicKeyInfo, publicBlob: Buffer): string {
    const check = crypto.randomBytes(4);
    let keyType: string;
    let rest: Buffer;
    if (pub.algorithm === "RSA") {
        const [, n, e, d, p, q, , , qinv] = derChildren(derParse(priv.export({ type: "pkcs1", format: "der" })));
        keyType = "ssh-rsa";
        rest = Buffer.concat([n, e, d, qinv, p, q].map((x) => sshMpint(intMagnitude(x))));
    } else if (pub.algorithm === "ED25519") {
        const [, , inner] = derChildren(derParse(priv.export({ type: "pkcs8", format: "der" })));
        const seed = derParse(expectTag(inner, 0x04, "privateKey").content).content;
        const raw = spkiKeyBits(pub.spki);
        keyType = "ssh-ed25519";
        rest = Buffer.concat([sshString(raw), sshString(Buffer.concat([seed, raw]))]);
    } else {
        const sshCurve = CURVES[pub.curve ?? "P256"].ssh ?? "";
        const [, d] = derChildren(derParse(priv.export({ type: "sec1", format: "der" })));
        keyType = `ecdsa-sha2-${sshCurve}`;
        rest = Buffer.concat([sshString(sshCurve), sshString(spkiKeyBits(pub.spki)), sshMpint(expectTag(d, 0x04, "privateKey").content)]);
    }
    let block = Buffer.concat([check, check, sshString(keyType), rest, sshString("")]);
    const padding: number[] = [];
    for (let i = 0; (block.length + i) % 8 !== 0; i++) padding.push(i + 1);
    block = Buffer.concat([block, Buffer.from(padding)]);
    const body = Buffer.concat([
        Buffer.from("openssh-key-v1\0", "latin1"),
        sshString("none"),
        sshString("none"),
        sshString(""),
        sshUint32(1),
        sshString(publicBlob),
        sshString(block),
    ]);
    return pemEncode("OPENSSH PRIVATE KEY", body);
}

// ------------------------------------------------------------------------------------------------------------
// Names (pkix.Name as the provider fills it, and Go's ToRDNSequence)
// ------------------------------------------------------------------------------------------------------------

const OID = {
    country: "2.5.4.6",
    province: "2.5.4.8",
    locality: "2.5.4.7",
    streetAddress: "2.5.4.9",
    postalCode: "2.5.4.17",
    organization: "2.5.4.10",
    organizationalUnit: "2.5.4.11",
    commonName: "2.5.4.3",
    serialNumber: "2.5.4.5",
    emailAddress: "1.2.840.113549.1.9.1",
};

/** pkix.Name (the fields the provider sets; `undefined` is Go's nil slice, `[]` an empty non-nil one). */
interface PkixName {
    country?: string[];
    province?: string[];
    locality?: string[];
    streetAddress?: string[];
    postalCode?: string[];
    organization?: string[];
    organizationalUnit?: string[];
    commonName: string;
    serialNumber: string;
    /** ExtraNames, encoded AttributeTypeAndValue each. */
    extraNames: Buffer[];
    /** len(Names): attributes seen when parsed (never set when built from inputs). */
    parsedAttributes: number;
}

const LIST_FIELDS = ["country", "province", "locality", "streetAddress", "postalCode", "organization", "organizationalUnit"] as const;

function emptyName(): PkixName {
    return { commonName: "", serialNumber: "", extraNames: [], parsedAttributes: 0 };
}

/** cmp.Equal(name, pkix.Name{}): nil slices only, empty strings, no extra or parsed names. */
function isEmptyName(n: PkixName): boolean {
    return LIST_FIELDS.every((f) => n[f] === undefined) && n.commonName === "" && n.serialNumber === "" && n.extraNames.length === 0 && n.parsedAttributes === 0;
}

/** Go's isPrintable for marshalling (asterisk and ampersand rejected). */
function isPrintableString(s: string): boolean {
    return /^[A-Za-z0-9 '()+,\-./:=?]*$/.test(s);
}

/** A Go string in an AttributeTypeAndValue: PrintableString when possible, else UTF8String. */
function derGoString(s: string): Buffer {
    return isPrintableString(s) ? tlv(0x13, Buffer.from(s, "latin1")) : tlv(0x0c, Buffer.from(s, "utf8"));
}

function derAtv(oid: string, value: Buffer): Buffer {
    return derSequence(derOid(oid), value);
}

/** createSubjectDistinguishedNames (common_cert.go). */
function nameFromSubject(s: SubjectInput): PkixName {
    const n = emptyName();
    if (s.commonName !== undefined) n.commonName = s.commonName;
    if (s.organization !== undefined) n.organization = [s.organization];
    if (s.organizationalUnit !== undefined) n.organizationalUnit = [s.organizationalUnit];
    if (s.streetAddresses !== undefined) n.streetAddress = [...s.streetAddresses];
    if (s.locality !== undefined) n.locality = [s.locality];
    if (s.province !== undefined) n.province = [s.province];
    if (s.country !== undefined) n.country = [s.country];
    if (s.postalCode !== undefined) n.postalCode = [s.postalCode];
    if (s.serialNumber !== undefined) n.serialNumber = s.serialNumber;
    if (s.emailAddress !== undefined) n.extraNames.push(derAtv(OID.emailAddress, tlv(0x16, Buffer.from(s.emailAddress, "utf8"))));
    return n;
}

/** asn1.Marshal(name.ToRDNSequence()): C, ST, L, STREET, POSTALCODE, O, OU, CN, SERIALNUMBER, then ExtraNames. */
function marshalName(n: PkixName): Buffer {
    const rdns: Buffer[] = [];
    const append = (values: string[] | undefined, oid: string) => {
        if (!values || values.length === 0) return;
        rdns.push(derSetOf(values.map((v) => derAtv(oid, derGoString(v)))));
    };
    append(n.country, OID.country);
    append(n.province, OID.province);
    append(n.locality, OID.locality);
    append(n.streetAddress, OID.streetAddress);
    append(n.postalCode, OID.postalCode);
    append(n.organization, OID.organization);
    append(n.organizationalUnit, OID.organizationalUnit);
    if (n.commonName.length > 0) append([n.commonName], OID.commonName);
    if (n.serialNumber.length > 0) append([n.serialNumber], OID.serialNumber);
    for (const atv of n.extraNames) rdns.push(derSetOf([atv]));
    return derSequence(...rdns);
}

/** An attribute value as Go's asn1 unmarshals it into interface{}: a string, or undefined for other types. */
function parseDirectoryString(v: DerNode): string | undefined {
    switch (v.tag) {
        case 0x0c:
            try {
                return UTF8_FATAL.decode(v.content);
            } catch {
                throw new Error("asn1: syntax error: invalid UTF-8 string");
            }
        case 0x13:
            if (!/^[A-Za-z0-9 '()+,\-./:=?*&]*$/.test(v.content.toString("latin1"))) throw new Error("asn1: syntax error: PrintableString contains invalid character");
            return v.content.toString("latin1");
        case 0x16:
            if (v.content.some((b) => b >= 0x80)) throw new Error("asn1: syntax error: IA5String contains invalid character");
            return v.content.toString("latin1");
        case 0x12:
            if (!/^[0-9 ]*$/.test(v.content.toString("latin1"))) throw new Error("asn1: syntax error: NumericString contains invalid character");
            return v.content.toString("latin1");
        case 0x14:
            if (v.content.some((b) => b >= 0x80)) throw new Error("T61String with non-ASCII bytes is not emulated by the lab engine stand-in");
            return v.content.toString("latin1");
        case 0x1e: {
            if (v.content.length % 2) throw new Error("pkcs12: odd-length BMP string");
            const swapped = Buffer.from(v.content);
            swapped.swap16();
            return swapped.toString("utf16le");
        }
        default:
            return undefined;
    }
}

/** Name.FillFromRDNSequence: only the standard attributes are kept; ExtraNames stays empty. */
function nameFromRdnSequence(seq: DerNode): PkixName {
    const n = emptyName();
    for (const rdn of derChildren(expectTag(seq, 0x30, "Name"))) {
        for (const atv of derChildren(expectTag(rdn, 0x31, "RelativeDistinguishedName"))) {
            const [oidNode, valueNode] = derChildren(expectTag(atv, 0x30, "AttributeTypeAndValue"));
            n.parsedAttributes++;
            const value = parseDirectoryString(expectTag(valueNode, valueNode?.tag ?? -1, "attribute value"));
            if (value === undefined) continue;
            const oid = derOidString(expectTag(oidNode, 0x06, "attribute type").content);
            const push = (f: (typeof LIST_FIELDS)[number]) => {
                n[f] = [...(n[f] ?? []), value];
            };
            if (oid === OID.commonName) n.commonName = value;
            else if (oid === OID.serialNumber) n.serialNumber = value;
            else if (oid === OID.country) push("country");
            else if (oid === OID.locality) push("locality");
            else if (oid === OID.province) push("province");
            else if (oid === OID.streetAddress) push("streetAddress");
            else if (oid === OID.organization) push("organization");
            else if (oid === OID.organizationalUnit) push("organizationalUnit");
            else if (oid === OID.postalCode) push("postalCode");
        }
    }
    return n;
}

// ------------------------------------------------------------------------------------------------------------
// IP addresses (net.ParseIP via net/netip) and URIs (net/url.Parse + URL.String)
// ------------------------------------------------------------------------------------------------------------

/** netip parseIPv4Fields: four decimal fields, no leading zeros, each ≤ 255. */
function parseIPv4Fields(s: string): number[] | undefined {
    const fields: number[] = [];
    let val = 0;
    let digits = 0;
    for (let i = 0; i < s.length; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x30 && c <= 0x39) {
            if (digits === 1 && val === 0) return undefined;
            val = val * 10 + (c - 0x30);
            digits++;
            if (val > 255) return undefined;
        } else if (s[i] === ".") {
            if (i === 0 || i === s.length - 1 || s[i - 1] === "." || fields.length === 3) return undefined;
            fields.push(val);
            val = 0;
            digits = 0;
        } else {
            return undefined;
        }
    }
    if (fields.length < 3) return undefined;
    fields.push(val);
    return fields;
}

/** netip parseIPv6 (without zone: net.ParseIP rejects zones). */
function parseIPv6(input: string): Buffer | undefined {
    if (input.includes("%")) return undefined;
    let s = input;
    const ip = Buffer.alloc(16);
    let ellipsis = -1;
    if (s.startsWith("::")) {
        ellipsis = 0;
        s = s.slice(2);
        if (s.length === 0) return ip;
    }
    let i = 0;
    while (i < 16) {
        let off = 0;
        let acc = 0;
        for (; off < s.length; off++) {
            const d = parseInt(s[off], 16);
            if (!/[0-9a-fA-F]/.test(s[off]) || Number.isNaN(d)) break;
            acc = acc * 16 + d;
            if (off > 3 || acc > 0xffff) return undefined;
        }
        if (off === 0) return undefined;
        if (off < s.length && s[off] === ".") {
            if ((ellipsis < 0 && i !== 12) || i + 4 > 16) return undefined;
            const v4 = parseIPv4Fields(s);
            if (!v4) return undefined;
            v4.forEach((b, k) => (ip[i + k] = b));
            s = "";
            i += 4;
            break;
        }
        ip[i] = acc >> 8;
        ip[i + 1] = acc & 0xff;
        i += 2;
        s = s.slice(off);
        if (s.length === 0) break;
        if (s[0] !== ":" || s.length === 1) return undefined;
        s = s.slice(1);
        if (s[0] === ":") {
            if (ellipsis >= 0) return undefined;
            ellipsis = i;
            s = s.slice(1);
            if (s.length === 0) break;
        }
    }
    if (s.length !== 0) return undefined;
    if (i < 16) {
        if (ellipsis < 0) return undefined;
        const n = 16 - i;
        for (let j = i - 1; j >= ellipsis; j--) ip[j + n] = ip[j];
        ip.fill(0, ellipsis, ellipsis + n);
    } else if (ellipsis >= 0) {
        return undefined;
    }
    return ip;
}

/** net.ParseIP: a 16-byte net.IP (IPv4 as ::ffff:a.b.c.d), or undefined. */
function goParseIP(s: string): Buffer | undefined {
    for (const c of s) {
        if (c === ".") {
            const v4 = parseIPv4Fields(s);
            return v4 ? Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...v4]) : undefined;
        }
        if (c === ":") return parseIPv6(s);
        if (c === "%") return undefined;
    }
    return undefined;
}

/** The bytes x509 writes for an IP SAN: ip.To4() when it is IPv4 (or v4-mapped), else all 16 bytes. */
function ipSanBytes(ip: Buffer): Buffer {
    if (ip.length === 4) return ip;
    const v4mapped = ip.subarray(0, 10).every((b) => b === 0) && ip[10] === 0xff && ip[11] === 0xff;
    return v4mapped ? ip.subarray(12) : ip;
}

/** net/url.URL fields that String() uses. */
interface GoUrl {
    scheme: string;
    opaque: string;
    user?: string;
    host: string;
    omitHost: boolean;
    rawPath: string;
    forceQuery: boolean;
    rawQuery: string;
    rawFragment: string;
}

const isHex = (c: string | undefined) => c !== undefined && /^[0-9a-fA-F]$/.test(c);

/** net/url unescape's validation (no decoding needed here). */
function checkUnescape(s: string, mode: "host" | "zone" | "path" | "user" | "fragment"): void {
    const hostOk = (c: string) => /[A-Za-z0-9!$&'()*+,;=:[\]<>"\-_.~]/.test(c);
    for (let i = 0; i < s.length; ) {
        if (s[i] === "%") {
            if (i + 2 >= s.length || !isHex(s[i + 1]) || !isHex(s[i + 2])) throw new Error(`invalid URL escape ${JSON.stringify(s.slice(i, i + 3))}`);
            const v = parseInt(s.slice(i + 1, i + 3), 16);
            if (mode === "host" && v < 0x80 && s.slice(i, i + 3) !== "%25") throw new Error(`invalid URL escape ${JSON.stringify(s.slice(i, i + 3))}`);
            if (mode === "zone" && s.slice(i, i + 3) !== "%25" && v !== 0x20 && (v >= 0x80 || !hostOk(String.fromCharCode(v)))) {
                throw new Error(`invalid URL escape ${JSON.stringify(s.slice(i, i + 3))}`);
            }
            i += 3;
        } else {
            if ((mode === "host" || mode === "zone") && s.charCodeAt(i) < 0x80 && !hostOk(s[i])) {
                throw new Error(`invalid character ${JSON.stringify(s[i])} in host name`);
            }
            i++;
        }
    }
}

function validOptionalPort(port: string): boolean {
    return port === "" || /^:[0-9]*$/.test(port);
}

/** parseHost (net/url). */
function parseUrlHost(host: string): void {
    if (host.startsWith("[")) {
        const i = host.lastIndexOf("]");
        if (i < 0) throw new Error("missing ']' in host");
        const colonPort = host.slice(i + 1);
        if (!validOptionalPort(colonPort)) throw new Error(`invalid port ${JSON.stringify(colonPort)} after host`);
        const zone = host.slice(0, i).indexOf("%25");
        if (zone >= 0) {
            checkUnescape(host.slice(0, zone), "host");
            checkUnescape(host.slice(zone, i), "zone");
            checkUnescape(host.slice(i), "host");
            return;
        }
    } else {
        const i = host.lastIndexOf(":");
        if (i >= 0 && !validOptionalPort(host.slice(i))) throw new Error(`invalid port ${JSON.stringify(host.slice(i))} after host`);
    }
    checkUnescape(host, "host");
}

/** getScheme (net/url). */
function getScheme(raw: string): [string, string] {
    for (let i = 0; i < raw.length; i++) {
        const c = raw[i];
        if (/[A-Za-z]/.test(c)) continue;
        if (/[0-9+\-.]/.test(c)) {
            if (i === 0) return ["", raw];
            continue;
        }
        if (c === ":") {
            if (i === 0) throw new Error("missing protocol scheme");
            return [raw.slice(0, i), raw.slice(i + 1)];
        }
        return ["", raw];
    }
    return ["", raw];
}

/** url.Parse(raw), keeping what String() needs; throws Go's error text. */
function goParseUrl(raw: string): GoUrl {
    const hash = raw.indexOf("#");
    const u = hash < 0 ? raw : raw.slice(0, hash);
    const frag = hash < 0 ? "" : raw.slice(hash + 1);
    const wrap = (what: string, e: unknown): never => {
        throw new Error(`parse ${JSON.stringify(what)}: ${(e as Error).message}`);
    };
    const url: GoUrl = { scheme: "", opaque: "", host: "", omitHost: false, rawPath: "", forceQuery: false, rawQuery: "", rawFragment: "" };
    try {
        if (/[\x00-\x1f\x7f]/.test(u)) throw new Error("net/url: invalid control character in URL");
        if (u === "*") {
            url.rawPath = "*";
        } else {
            let rest: string;
            [url.scheme, rest] = getScheme(u);
            url.scheme = url.scheme.toLowerCase();
            if (rest.endsWith("?") && rest.split("?").length === 2) {
                url.forceQuery = true;
                rest = rest.slice(0, -1);
            } else {
                const q = rest.indexOf("?");
                if (q >= 0) {
                    url.rawQuery = rest.slice(q + 1);
                    rest = rest.slice(0, q);
                }
            }
            if (!rest.startsWith("/")) {
                if (url.scheme !== "") {
                    url.opaque = rest;
                    rest = "";
                } else if (rest.split("/")[0].includes(":")) {
                    throw new Error("first path segment in URL cannot contain colon");
                }
            }
            if (url.opaque === "" && (url.scheme !== "" || !rest.startsWith("///")) && rest.startsWith("//")) {
                let authority = rest.slice(2);
                rest = "";
                const slash = authority.indexOf("/");
                if (slash >= 0) {
                    rest = authority.slice(slash);
                    authority = authority.slice(0, slash);
                }
                const at = authority.lastIndexOf("@");
                url.host = at < 0 ? authority : authority.slice(at + 1);
                parseUrlHost(url.host);
                if (at >= 0) {
                    url.user = authority.slice(0, at);
                    if (!/^[A-Za-z0-9\-._:~!$&'()*+,;=%@]*$/.test(url.user)) throw new Error("net/url: invalid userinfo");
                    for (const part of url.user.split(":")) checkUnescape(part, "user");
                }
            } else if (url.scheme !== "" && rest.startsWith("/")) {
                url.omitHost = true;
            }
            checkUnescape(rest, "path");
            url.rawPath = rest;
        }
    } catch (e) {
        wrap(u, e);
    }
    if (frag !== "") {
        try {
            checkUnescape(frag, "fragment");
        } catch (e) {
            wrap(raw, e);
        }
        url.rawFragment = frag;
    }
    return url;
}

/** URL.String() for URLs whose components Go would write back unchanged (see goUrlRoundTrips). */
function goUrlString(u: GoUrl): string {
    let out = u.scheme !== "" ? `${u.scheme}:` : "";
    if (u.opaque !== "") {
        out += u.opaque;
    } else {
        if (u.scheme !== "" || u.host !== "" || u.user !== undefined) {
            if (!(u.omitHost && u.host === "" && u.user === undefined)) {
                if (u.host !== "" || u.rawPath !== "" || u.user !== undefined) out += "//";
                if (u.user !== undefined) out += `${u.user}@`;
                out += u.host;
            }
        }
        if (u.rawPath !== "" && u.rawPath[0] !== "/" && u.host !== "") out += "/";
        out += u.rawPath;
    }
    if (u.forceQuery || u.rawQuery !== "") out += `?${u.rawQuery}`;
    if (u.rawFragment !== "") out += `#${u.rawFragment}`;
    return out;
}

/**
 * Whether Go's URL.String() gives back exactly the parsed components (so goUrlString is exact): ASCII only,
 * path and fragment from the RFC 3986 character set, no "%" in the host, plain userinfo.
 */
function goUrlRoundTrips(u: GoUrl): boolean {
    const rfc3986 = /^[A-Za-z0-9\-._~:/?[\]@!$&'()*+,;=%]*$/;
    if (!/^[\x20-\x7e]*$/.test(u.opaque + u.rawQuery + u.host)) return false;
    if (u.host.includes("%")) return false;
    if (u.user !== undefined && !/^[A-Za-z0-9\-._~]*(:[A-Za-z0-9\-._~]*)?$/.test(u.user)) return false;
    return rfc3986.test(u.rawPath) && rfc3986.test(u.rawFragment) && !u.rawFragment.includes("#");
}

// ------------------------------------------------------------------------------------------------------------
// Extensions and certificate building (x509.CreateCertificate / CreateCertificateRequest)
// ------------------------------------------------------------------------------------------------------------

/** Key usage bit numbers (x509.KeyUsage is 1 << n). */
const KEY_USAGES: Record<string, number> = {
    digital_signature: 0,
    content_commitment: 1,
    key_encipherment: 2,
    data_encipherment: 3,
    key_agreement: 4,
    cert_signing: 5,
    crl_signing: 6,
    encipher_only: 7,
    decipher_only: 8,
};

/** Extended key usage OIDs (x509.ExtKeyUsage*). */
const EXT_KEY_USAGES: Record<string, string> = {
    any_extended: "2.5.29.37.0",
    server_auth: "1.3.6.1.5.5.7.3.1",
    client_auth: "1.3.6.1.5.5.7.3.2",
    code_signing: "1.3.6.1.5.5.7.3.3",
    email_protection: "1.3.6.1.5.5.7.3.4",
    ipsec_end_system: "1.3.6.1.5.5.7.3.5",
    ipsec_tunnel: "1.3.6.1.5.5.7.3.6",
    ipsec_user: "1.3.6.1.5.5.7.3.7",
    timestamping: "1.3.6.1.5.5.7.3.8",
    ocsp_signing: "1.3.6.1.5.5.7.3.9",
    microsoft_server_gated_crypto: "1.3.6.1.4.1.311.10.3.3",
    netscape_server_gated_crypto: "2.16.840.1.113730.4.1",
    microsoft_commercial_code_signing: "1.3.6.1.4.1.311.2.1.22",
    microsoft_kernel_code_signing: "1.3.6.1.4.1.311.61.1.1",
};

/** supportedKeyUsagesStr(): every accepted `allowedUses` string, sorted. */
const ALLOWED_USES: readonly string[] = [...Object.keys(KEY_USAGES), ...Object.keys(EXT_KEY_USAGES)].sort();

const OID_EXT = {
    keyUsage: "2.5.29.15",
    extKeyUsage: "2.5.29.37",
    basicConstraints: "2.5.29.19",
    subjectKeyId: "2.5.29.14",
    authorityKeyId: "2.5.29.35",
    subjectAltName: "2.5.29.17",
    extensionRequest: "1.2.840.113549.1.9.14",
};

function derExtension(oid: string, critical: boolean, value: Buffer): Buffer {
    return derSequence(derOid(oid), ...(critical ? [DER_TRUE] : []), derOctetString(value));
}

function reverseBits(b: number): number {
    let r = 0;
    for (let i = 0; i < 8; i++) if (b & (1 << i)) r |= 1 << (7 - i);
    return r;
}

/** marshalKeyUsage: critical, BIT STRING of the reversed bits, one or two bytes, trailing zero bits unused. */
function keyUsageExtension(ku: number): Buffer {
    const a = [reverseBits(ku & 0xff), reverseBits((ku >> 8) & 0xff)];
    const bytes = Buffer.from(a[1] !== 0 ? a : [a[0]]);
    let bitLength = bytes.length * 8;
    outer: for (let i = bytes.length - 1; i >= 0; i--) {
        for (let bit = 0; bit < 8; bit++) {
            if ((bytes[i] >> bit) & 1) break outer;
            bitLength--;
        }
    }
    return derExtension(OID_EXT.keyUsage, true, derBitString(bytes, (8 - (bitLength % 8)) % 8));
}

function isIA5(s: string): boolean {
    return /^[\x00-\x7f]*$/.test(s);
}

/** marshalSANs: DNS names, then IPs, then URIs (no e-mail addresses: the provider never sets them). */
function subjectAltNames(dnsNames: string[], ips: Buffer[], uris: string[]): Buffer {
    const names: Buffer[] = [];
    for (const d of dnsNames) {
        if (!isIA5(d)) throw new Error(`x509: ${JSON.stringify(d)} cannot be encoded as an IA5String`);
        names.push(tlv(0x82, Buffer.from(d, "latin1")));
    }
    for (const ip of ips) names.push(tlv(0x87, ipSanBytes(ip)));
    for (const u of uris) {
        if (!isIA5(u)) throw new Error(`x509: ${JSON.stringify(u)} cannot be encoded as an IA5String`);
        names.push(tlv(0x86, Buffer.from(u, "latin1")));
    }
    return derSequence(...names);
}

/** The parts of an x509.Certificate template the provider fills in. */
interface CertTemplate {
    subject: PkixName;
    dnsNames: string[];
    ipAddresses: Buffer[];
    uris: string[];
}

/** The certificate settings read from the plan (createCertificate in common_cert.go). */
interface CertSettings {
    validityPeriodHours: number;
    allowedUses: string[];
    isCaCertificate: boolean;
    maxPathLength?: number;
    setSubjectKeyId: boolean;
    /** SelfSignedCert only; undefined where the schema has no such attribute. */
    setAuthorityKeyId?: boolean;
}

/** The parent: the CA certificate (LocallySignedCert) or the template itself (SelfSignedCert). */
interface CertParent {
    /** RawSubject of the parent certificate; undefined for a self-signed certificate. */
    rawSubject?: Buffer;
    subjectKeyId?: Buffer;
    /** The parent certificate's public key (SPKI DER), checked against the signer. */
    spki?: Buffer;
}

interface IssuedCertificate {
    id: string;
    certPem: string;
    validityStartTime: string;
    validityEndTime: string;
}

/** Go's time.Time.MarshalText (RFC 3339 with trimmed fraction), in UTC at millisecond precision. */
function rfc3339(d: Date): string {
    if (d.getUTCFullYear() < 0 || d.getUTCFullYear() > 9999) throw new Error("Time.MarshalText: year outside of range [0,9999]");
    const iso = d.toISOString();
    const [whole, frac] = iso.slice(0, -1).split(".");
    const trimmed = (frac ?? "").replace(/0+$/, "");
    return `${whole}${trimmed ? `.${trimmed}` : ""}Z`;
}

/** Largest validityPeriodHours whose time.Duration (nanoseconds in an int64) does not overflow. */
const MAX_GO_DURATION_HOURS = Math.floor(Number(2n ** 63n / 3_600_000_000_000n));

/**
 * createCertificate (common_cert.go) followed by x509.CreateCertificate: validity, 128-bit serial, usages,
 * CA rules, SKI/AKI, extensions in Go's order, signature.
 */
function issueCertificate(
    template: CertTemplate,
    settings: CertSettings,
    parent: CertParent,
    subjectPublicKey: PublicKeyInfo,
    signer: ParsedPrivateKey,
    now: Date,
): IssuedCertificate {
    if (settings.validityPeriodHours > MAX_GO_DURATION_HOURS) {
        throw new Error(`validityPeriodHours ${settings.validityPeriodHours} overflows Go's time.Duration; the lab engine stand-in does not emulate the wrapped NotAfter`);
    }
    const notBefore = new Date(now.getTime());
    const notAfter = new Date(now.getTime() + settings.validityPeriodHours * 3_600_000);
    const serial = BigInt(`0x${crypto.randomBytes(16).toString("hex")}`);

    let keyUsage = 0;
    const extKeyUsages: string[] = [];
    for (const use of settings.allowedUses) {
        if (use in KEY_USAGES) keyUsage |= 1 << KEY_USAGES[use];
        if (use in EXT_KEY_USAGES) extKeyUsages.push(EXT_KEY_USAGES[use]);
    }

    let ski: Buffer | undefined;
    if (settings.isCaCertificate) {
        if (isEmptyName(template.subject)) {
            throw new Error("Invalid Certificate Subject: Must contain at least one Distinguished Name when creating Certificate Authority (CA)");
        }
        ski = subjectKeyId(subjectPublicKey);
    }
    const maxPathLen = settings.maxPathLength !== undefined && settings.maxPathLength >= 0 ? settings.maxPathLength : 0;
    if (settings.setSubjectKeyId) ski = subjectKeyId(subjectPublicKey);
    let templateAki: Buffer | undefined;
    if (settings.setAuthorityKeyId) {
        // For a self-signed certificate the parent is the template itself.
        const parentSki = parent.rawSubject === undefined ? ski : parent.subjectKeyId;
        if (!parentSki || parentSki.length === 0) throw new Error("Invalid Certificate Authority: Could not determine Authority Key Identifier");
        templateAki = parentSki;
    }

    // x509.CreateCertificate
    if (!settings.isCaCertificate && maxPathLen !== 0) throw new Error("Failed to create certificate: x509: only CAs are allowed to specify MaxPathLen");
    let signing: ReturnType<typeof signerFor>;
    try {
        signing = signerFor(signer);
    } catch (e) {
        throw new Error(`Failed to create certificate: ${(e as Error).message}`);
    }
    const subjectBytes = marshalName(template.subject);
    const issuerBytes = parent.rawSubject ?? subjectBytes;
    let aki = templateAki;
    if (!issuerBytes.equals(subjectBytes) && parent.subjectKeyId && parent.subjectKeyId.length > 0) aki = parent.subjectKeyId;
    if (!ski && settings.isCaCertificate) ski = subjectKeyId(subjectPublicKey);
    if (parent.spki) {
        const signerSpki = crypto.createPublicKey(signer.key).export({ type: "spki", format: "der" });
        if (!signerSpki.equals(parent.spki)) throw new Error("Failed to create certificate: x509: provided PrivateKey doesn't match parent's PublicKey");
    }

    const extensions: Buffer[] = [];
    if (keyUsage !== 0) extensions.push(keyUsageExtension(keyUsage));
    if (extKeyUsages.length > 0) extensions.push(derExtension(OID_EXT.extKeyUsage, false, derSequence(...extKeyUsages.map(derOid))));
    const bc: Buffer[] = [];
    if (settings.isCaCertificate) bc.push(DER_TRUE);
    if (maxPathLen > 0) bc.push(derSmallInt(maxPathLen)); // 0 without MaxPathLenZero means "no limit" in Go
    extensions.push(derExtension(OID_EXT.basicConstraints, true, derSequence(...bc)));
    if (ski) extensions.push(derExtension(OID_EXT.subjectKeyId, false, derOctetString(ski)));
    if (aki) extensions.push(derExtension(OID_EXT.authorityKeyId, false, derSequence(tlv(0x80, aki))));
    if (template.dnsNames.length > 0 || template.ipAddresses.length > 0 || template.uris.length > 0) {
        let sans: Buffer;
        try {
            sans = subjectAltNames(template.dnsNames, template.ipAddresses, template.uris);
        } catch (e) {
            throw new Error(`Failed to create certificate: ${(e as Error).message}`);
        }
        extensions.push(derExtension(OID_EXT.subjectAltName, subjectBytes.equals(Buffer.from([0x30, 0x00])), sans));
    }

    let validity: Buffer;
    try {
        validity = derSequence(derTime(notBefore), derTime(notAfter));
    } catch (e) {
        throw new Error(`Failed to create certificate: ${(e as Error).message}`);
    }
    const tbs = derSequence(
        tlv(0xa0, derSmallInt(2)),
        derUnsigned(bigintToBytes(serial)),
        signing.algorithmIdentifier,
        issuerBytes,
        validity,
        subjectBytes,
        subjectPublicKey.spki,
        tlv(0xa3, derSequence(...extensions)),
    );
    const der = derSequence(tbs, signing.algorithmIdentifier, derBitString(signing.sign(tbs)));
    return { id: serial.toString(10), certPem: pemEncode("CERTIFICATE", der), validityStartTime: rfc3339(notBefore), validityEndTime: rfc3339(notAfter) };
}

/** x509.CreateCertificateRequest: version 0, subject, SPKI, [0] attributes (extensionRequest with the SAN). */
function createCertificateRequest(template: CertTemplate, key: ParsedPrivateKey): Buffer {
    const signing = signerFor(key);
    const spki = crypto.createPublicKey(key.key).export({ type: "spki", format: "der" });
    const attributes: Buffer[] = [];
    if (template.dnsNames.length > 0 || template.ipAddresses.length > 0 || template.uris.length > 0) {
        const san = derExtension(OID_EXT.subjectAltName, false, subjectAltNames(template.dnsNames, template.ipAddresses, template.uris));
        attributes.push(derSequence(derOid(OID_EXT.extensionRequest), derSetOf([derSequence(san)])));
    }
    const info = derSequence(derSmallInt(0), marshalName(template.subject), spki, tlv(0xa0, ...attributes));
    return derSequence(info, signing.algorithmIdentifier, derBitString(signing.sign(info)));
}

/** A certificate request as x509.ParseCertificateRequest gives it to the provider. */
interface ParsedCsr {
    subject: PkixName;
    publicKey: PublicKeyInfo;
    dnsNames: string[];
    ipAddresses: Buffer[];
    uris: string[];
}

/** parseSANExtension (the names LocallySignedCert copies: DNS, IP, URI). */
function parseSans(value: Buffer, into: ParsedCsr): void {
    for (const gn of derChildren(expectTag(derParse(value), 0x30, "GeneralNames"))) {
        const text = gn.content.toString("latin1");
        switch (gn.tag) {
            case 0x81:
                if (!isIA5(text)) throw new Error("x509: SAN rfc822Name is malformed");
                break;
            case 0x82:
                if (!isIA5(text)) throw new Error("x509: SAN dNSName is malformed");
                into.dnsNames.push(text);
                break;
            case 0x86: {
                if (!isIA5(text)) throw new Error("x509: SAN uniformResourceIdentifier is malformed");
                let parsed: GoUrl;
                try {
                    parsed = goParseUrl(text);
                } catch (e) {
                    throw new Error(`x509: cannot parse URI ${JSON.stringify(text)}: ${(e as Error).message}`);
                }
                if (!goUrlRoundTrips(parsed)) throw new Error(`URI SAN ${JSON.stringify(text)}: Go's re-serialisation is not emulated by the lab engine stand-in`);
                into.uris.push(goUrlString(parsed));
                break;
            }
            case 0x87:
                if (gn.content.length !== 4 && gn.content.length !== 16) throw new Error(`x509: cannot parse IP address of length ${gn.content.length}`);
                into.ipAddresses.push(Buffer.from(gn.content));
                break;
        }
    }
}

/** A public key from SPKI DER, accepted only where Go's parsePublicKey would give a key the stand-in can certify. */
function parseSpki(spki: Buffer): PublicKeyInfo {
    let key: crypto.KeyObject;
    try {
        key = crypto.createPublicKey({ key: spki, format: "der", type: "spki" });
    } catch (e) {
        throw new Error(`x509: failed to parse public key: ${(e as Error).message}`);
    }
    if (!["rsa", "ec", "ed25519"].includes(key.asymmetricKeyType ?? "")) {
        throw new Error(`public key type ${key.asymmetricKeyType ?? "unknown"} is not supported by the lab engine stand-in`);
    }
    if (key.asymmetricKeyType === "ec" && spkiKeyBits(spki)[0] !== 0x04) throw new Error("x509: failed to unmarshal elliptic curve point");
    return publicKeyInfo(key);
}

/** x509.ParseCertificateRequest (the fields the provider uses). */
function parseCertificateRequest(der: Buffer): ParsedCsr {
    const [info, sigAlg, sig] = derChildren(expectTag(derParse(der), 0x30, "CertificateRequest"));
    expectTag(sigAlg, 0x30, "signatureAlgorithm");
    expectTag(sig, 0x03, "signature");
    const [version, subject, spki, attrs, ...extra] = derChildren(expectTag(info, 0x30, "CertificationRequestInfo"));
    expectTag(version, 0x02, "version");
    if (extra.length > 0) throw new Error("asn1: syntax error: trailing data in CertificationRequestInfo");
    const csr: ParsedCsr = {
        subject: nameFromRdnSequence(expectTag(subject, 0x30, "subject")),
        publicKey: parseSpki(expectTag(spki, 0x30, "subjectPKInfo").full),
        dnsNames: [],
        ipAddresses: [],
        uris: [],
    };
    const seen = new Set<string>();
    for (const attr of derChildren(expectTag(attrs, 0xa0, "attributes"))) {
        let parts: DerNode[];
        try {
            parts = derChildren(attr);
        } catch {
            continue; // attributes that do not parse are ignored
        }
        if (attr.tag !== 0x30 || parts.length !== 2 || parts[0].tag !== 0x06 || parts[1].tag !== 0x31) continue;
        const values = derChildren(parts[1]);
        if (values.length === 0 || derOidString(parts[0].content) !== OID_EXT.extensionRequest) continue;
        for (const ext of derChildren(expectTag(values[0], 0x30, "extensions"))) {
            const fields = derChildren(expectTag(ext, 0x30, "Extension"));
            const oid = derOidString(expectTag(fields[0], 0x06, "extnID").content);
            if (seen.has(oid)) throw new Error("x509: certificate request contains duplicate requested extensions");
            seen.add(oid);
            if (oid === OID_EXT.subjectAltName) parseSans(expectTag(fields[fields.length - 1], 0x04, "extnValue").content, csr);
        }
    }
    return csr;
}

/** The parts of the CA certificate x509.CreateCertificate reads from the parent. */
interface ParsedCaCert extends CertParent {
    rawSubject: Buffer;
    isCa: boolean;
    spki: Buffer;
}

/** x509.ParseCertificate (the fields used as parent), after OpenSSL confirms the certificate parses. */
function parseCaCertificate(der: Buffer): ParsedCaCert {
    try {
        new crypto.X509Certificate(der);
    } catch (e) {
        throw new Error(`failed to parse certificate: ${(e as Error).message}`);
    }
    const [tbs] = derChildren(expectTag(derParse(der), 0x30, "Certificate"));
    const fields = derChildren(expectTag(tbs, 0x30, "TBSCertificate"));
    const offset = fields[0]?.tag === 0xa0 ? 1 : 0;
    const subject = expectTag(fields[offset + 4], 0x30, "subject");
    const spkiNode = expectTag(fields[offset + 5], 0x30, "subjectPublicKeyInfo");
    const spki = crypto.createPublicKey({ key: spkiNode.full, format: "der", type: "spki" }).export({ type: "spki", format: "der" });
    const out: ParsedCaCert = { rawSubject: Buffer.from(subject.full), isCa: false, spki };
    const extsWrapper = fields.slice(offset + 6).find((f) => f.tag === 0xa3);
    if (extsWrapper) {
        for (const ext of derChildren(expectTag(derChildren(extsWrapper)[0], 0x30, "extensions"))) {
            const parts = derChildren(ext);
            const oid = derOidString(parts[0].content);
            const value = expectTag(parts[parts.length - 1], 0x04, "extnValue").content;
            if (oid === OID_EXT.subjectKeyId) out.subjectKeyId = Buffer.from(expectTag(derParse(value), 0x04, "SubjectKeyIdentifier").content);
            if (oid === OID_EXT.basicConstraints) {
                const first = derChildren(derParse(value))[0];
                out.isCa = first?.tag === 0x01 && first.content[0] !== 0;
            }
        }
    }
    return out;
}

/** decodePEM (resource_locally_signed_cert.go): the first block, which must have the expected type. */
function decodeTypedPem(pem: string, type: string): Buffer {
    const block = pemDecode(pem);
    if (!block) throw new Error(`failed to decode PEM of expected type ${JSON.stringify(type)} from bytes`);
    if (block.type !== type) throw new Error(`invalid PEM type - expected ${JSON.stringify(type)}, got ${JSON.stringify(block.type)}`);
    return block.bytes;
}

/** Parses `ipAddresses` / `uris` inputs like the provider's Create (net.ParseIP, url.Parse). */
function parseSanInputs(ctx: Ctx, ipAddresses: string[] | undefined, uris: string[] | undefined): { ips: Buffer[]; uris: string[] } {
    const ips = (ipAddresses ?? []).map((s, i) => {
        const ip = goParseIP(s);
        if (!ip) fail(ctx, `input "ipAddresses[${i}]": Invalid IP address: Failed to parse ${JSON.stringify(s)}`);
        return ip;
    });
    const out = (uris ?? []).map((s, i) => {
        let u: GoUrl;
        try {
            u = goParseUrl(s);
        } catch (e) {
            fail(ctx, `input "uris[${i}]": Invalid URI: Failed to parse ${JSON.stringify(s)}: ${(e as Error).message}`);
        }
        if (!goUrlRoundTrips(u)) {
            fail(ctx, `input "uris[${i}]" = ${JSON.stringify(s)}: Go would re-serialise this URI (url.URL.String()) and the lab engine stand-in does not emulate that; use an ASCII URI from the RFC 3986 character set`);
        }
        return goUrlString(u);
    });
    return { ips, uris: out };
}

function wrapError<T>(ctx: Ctx, summary: string, f: () => T): T {
    try {
        return f();
    } catch (e) {
        fail(ctx, `${summary}: ${(e as Error).message}`);
    }
}

/** Output keys present in `outputs`, for the secretOutputs list. */
function presentSecrets(outputs: Record<string, unknown>, names: string[]): string[] {
    return names.filter((n) => n in outputs);
}

function echoOptional(out: Record<string, unknown>, set: Record<string, unknown>, keys: string[]): void {
    for (const k of keys) if (k in set) out[k] = set[k];
}

// ------------------------------------------------------------------------------------------------------------
// Resources
// ------------------------------------------------------------------------------------------------------------

const WRITE_ONLY = "write-only inputs are not emulated; pass the key in privateKeyPem";

const PRIVATE_KEY_SCHEMA: Schema = {
    algorithm: { kind: "string", required: true, oneOf: ALGORITHMS },
    ecdsaCurve: { kind: "string", oneOf: CURVE_NAMES },
    rsaBits: { kind: "int" },
};

/**
 * PrivateKey: generates the key; `privateKeyPem` is PKCS#1 (RSA), SEC 1 (ECDSA) or PKCS#8 (Ed25519);
 * OpenSSH forms and fingerprints are "" for P-224 (x/crypto/ssh has no P-224). The id is hashForState of
 * the PKIX public key DER: hex SHA-1 of the DER after Go's strings.TrimSpace (as the provider computes it).
 */
function createPrivateKey(ctx: Ctx, inputs: Record<string, unknown>): ProviderResult {
    const set = checkInputs(ctx, PRIVATE_KEY_SCHEMA, inputs);
    const algorithm = str(set, "algorithm") as KeyAlgorithm;
    const rsaBits = int(set, "rsaBits") ?? 2048;
    const ecdsaCurve = (str(set, "ecdsaCurve") ?? "P224") as CurveName;
    const priv = wrapError(ctx, "Unable to generate Key from configuration", () => {
        if (algorithm === "RSA") {
            checkRsaSize(rsaBits);
            try {
                return crypto.generateKeyPairSync("rsa", { modulusLength: rsaBits, publicExponent: 65537 }).privateKey;
            } catch (e) {
                throw new Error(`input "rsaBits" = ${rsaBits}: the lab engine stand-in cannot generate this key (${(e as Error).message})`);
            }
        }
        if (algorithm === "ECDSA") return crypto.generateKeyPairSync("ec", { namedCurve: CURVES[ecdsaCurve].openssl }).privateKey;
        return crypto.generateKeyPairSync("ed25519").privateKey;
    });
    const format = algorithm === "RSA" ? "pkcs1" : algorithm === "ECDSA" ? "sec1" : "pkcs8";
    const label = algorithm === "RSA" ? "RSA PRIVATE KEY" : algorithm === "ECDSA" ? "EC PRIVATE KEY" : "PRIVATE KEY";
    const pub = publicKeyInfo(crypto.createPublicKey(priv));
    const blob = sshPublicBlob(pub);
    const outputs: Record<string, unknown> = {
        algorithm,
        ecdsaCurve,
        rsaBits,
        privateKeyPem: pemEncode(label, priv.export({ type: format, format: "der" })),
        privateKeyPemPkcs8: pemEncode("PRIVATE KEY", priv.export({ type: "pkcs8", format: "der" })),
        privateKeyOpenssh: blob ? opensshPrivateKey(priv, pub, blob) : "",
        publicKeyPem: pemEncode("PUBLIC KEY", pub.spki),
        publicKeyOpenssh: blob ? `${blob.subarray(4, 4 + blob.readUInt32BE(0)).toString("latin1")} ${blob.toString("base64")}\n` : "",
        publicKeyFingerprintMd5: blob ? (crypto.createHash("md5").update(blob).digest("hex").match(/../g) ?? []).join(":") : "",
        publicKeyFingerprintSha256: blob ? `SHA256:${crypto.createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}` : "",
    };
    return { id: hashForState(pub.spki), outputs, secretOutputs: ["privateKeyPem", "privateKeyPemPkcs8", "privateKeyOpenssh"] };
}

const CERT_REQUEST_SCHEMA: Schema = {
    privateKeyPem: { kind: "string", required: true, requiredNote: "the provider needs exactly one of privateKeyPem or privateKeyPemWo; the stand-in supports privateKeyPem" },
    privateKeyPemWo: { kind: "string", unsupported: WRITE_ONLY },
    privateKeyPemWoVersion: { kind: "int", unsupported: WRITE_ONLY },
    subject: { kind: "subject" },
    dnsNames: { kind: "stringList" },
    ipAddresses: { kind: "stringList", elementMinLength: 1 },
    uris: { kind: "stringList", elementMinLength: 1 },
};

/** CertRequest: a PKCS#10 request signed by the key; id = hashForState(request DER). */
function createCertRequest(ctx: Ctx, inputs: Record<string, unknown>): ProviderResult {
    const set = checkInputs(ctx, CERT_REQUEST_SCHEMA, inputs);
    const privateKeyPem = str(set, "privateKeyPem") ?? "";
    const key = wrapError(ctx, `input "privateKeyPem": Failed to parse private key PEM`, () => parsePrivateKeyPem(privateKeyPem));
    const subject = set.subject !== undefined ? nameFromSubject(set.subject as SubjectInput) : emptyName();
    const dnsNames = list(set, "dnsNames") ?? [];
    const { ips, uris } = parseSanInputs(ctx, list(set, "ipAddresses"), list(set, "uris"));
    const der = wrapError(ctx, "Error creating certificate request", () => createCertificateRequest({ subject, dnsNames, ipAddresses: ips, uris }, key));
    const outputs: Record<string, unknown> = { privateKeyPem, keyAlgorithm: key.algorithm, certRequestPem: pemEncode("CERTIFICATE REQUEST", der) };
    echoOptional(outputs, set, ["subject", "dnsNames", "ipAddresses", "uris"]);
    return { id: hashForState(der), outputs, secretOutputs: presentSecrets(outputs, ["privateKeyPem"]) };
}

/** Schema fields shared by both certificate resources. */
const CERT_COMMON_SCHEMA: Schema = {
    validityPeriodHours: { kind: "int", required: true, atLeast: 0 },
    allowedUses: { kind: "stringList", required: true, elementsOneOf: ALLOWED_USES },
    earlyRenewalHours: { kind: "int", atLeast: 0 },
    isCaCertificate: { kind: "bool" },
    maxPathLength: { kind: "int" },
    setSubjectKeyId: { kind: "bool" },
};

const SELF_SIGNED_CERT_SCHEMA: Schema = {
    ...CERT_COMMON_SCHEMA,
    privateKeyPem: { kind: "string", required: true, requiredNote: "the provider needs exactly one of privateKeyPem or privateKeyPemWo; the stand-in supports privateKeyPem" },
    privateKeyPemWo: { kind: "string", unsupported: WRITE_ONLY },
    privateKeyPemWoVersion: { kind: "int", unsupported: WRITE_ONLY },
    setAuthorityKeyId: { kind: "bool" },
    subject: { kind: "subject" },
    dnsNames: { kind: "stringList" },
    ipAddresses: { kind: "stringList" },
    uris: { kind: "stringList" },
};

const LOCALLY_SIGNED_CERT_SCHEMA: Schema = {
    ...CERT_COMMON_SCHEMA,
    certRequestPem: { kind: "string", required: true },
    caCertPem: { kind: "string", required: true },
    caPrivateKeyPem: { kind: "string", required: true, requiredNote: "the provider needs exactly one of caPrivateKeyPem or caPrivateKeyPemWo; the stand-in supports caPrivateKeyPem" },
    caPrivateKeyPemWo: { kind: "string", unsupported: "write-only inputs are not emulated; pass the key in caPrivateKeyPem" },
    caPrivateKeyPemWoVersion: { kind: "int", unsupported: "write-only inputs are not emulated; pass the key in caPrivateKeyPem" },
};

/** The settings createCertificate reads, with the schema defaults (false, 0). */
function certSettings(set: Record<string, unknown>, withAuthorityKeyId: boolean): CertSettings {
    return {
        validityPeriodHours: int(set, "validityPeriodHours") ?? 0,
        allowedUses: list(set, "allowedUses") ?? [],
        isCaCertificate: bool(set, "isCaCertificate") ?? false,
        maxPathLength: int(set, "maxPathLength"),
        setSubjectKeyId: bool(set, "setSubjectKeyId") ?? false,
        ...(withAuthorityKeyId ? { setAuthorityKeyId: bool(set, "setAuthorityKeyId") ?? false } : {}),
    };
}

/** readyForRenewal at create: true when validity is 0 or earlyRenewalHours ≥ validityPeriodHours. */
function readyForRenewal(validityPeriodHours: number, earlyRenewalHours: number): boolean {
    return validityPeriodHours === 0 || earlyRenewalHours >= validityPeriodHours;
}

/** Outputs common to both certificate resources (defaults as the provider's state holds them). */
function certOutputs(set: Record<string, unknown>, s: CertSettings, cert: IssuedCertificate): Record<string, unknown> {
    const early = int(set, "earlyRenewalHours") ?? 0;
    const out: Record<string, unknown> = {
        allowedUses: s.allowedUses,
        validityPeriodHours: s.validityPeriodHours,
        earlyRenewalHours: early,
        isCaCertificate: s.isCaCertificate,
        setSubjectKeyId: s.setSubjectKeyId,
        certPem: cert.certPem,
        validityStartTime: cert.validityStartTime,
        validityEndTime: cert.validityEndTime,
        readyForRenewal: readyForRenewal(s.validityPeriodHours, early),
    };
    echoOptional(out, set, ["maxPathLength"]);
    return out;
}

/** SelfSignedCert: the key certifies itself; id = the serial in decimal. */
function createSelfSignedCert(ctx: Ctx, inputs: Record<string, unknown>, now: Date): ProviderResult {
    const set = checkInputs(ctx, SELF_SIGNED_CERT_SCHEMA, inputs);
    const privateKeyPem = str(set, "privateKeyPem") ?? "";
    const key = wrapError(ctx, `input "privateKeyPem": Failed to parse private key PEM`, () => parsePrivateKeyPem(privateKeyPem));
    const subject = set.subject !== undefined ? nameFromSubject(set.subject as SubjectInput) : emptyName();
    const { ips, uris } = parseSanInputs(ctx, list(set, "ipAddresses"), list(set, "uris"));
    const settings = certSettings(set, true);
    const pub = publicKeyInfo(crypto.createPublicKey(key.key));
    const template: CertTemplate = { subject, dnsNames: list(set, "dnsNames") ?? [], ipAddresses: ips, uris };
    const cert = wrapError(ctx, "certificate", () => issueCertificate(template, settings, {}, pub, key, now));
    const outputs: Record<string, unknown> = {
        ...certOutputs(set, settings, cert),
        privateKeyPem,
        keyAlgorithm: key.algorithm,
        setAuthorityKeyId: settings.setAuthorityKeyId ?? false,
    };
    echoOptional(outputs, set, ["subject", "dnsNames", "ipAddresses", "uris"]);
    return { id: cert.id, outputs, secretOutputs: presentSecrets(outputs, ["privateKeyPem"]) };
}

/** LocallySignedCert: subject and SANs from the CSR only, signed by the CA key; id = the serial in decimal. */
function createLocallySignedCert(ctx: Ctx, inputs: Record<string, unknown>, now: Date): ProviderResult {
    const set = checkInputs(ctx, LOCALLY_SIGNED_CERT_SCHEMA, inputs);
    const certRequestPem = str(set, "certRequestPem") ?? "";
    const caCertPem = str(set, "caCertPem") ?? "";
    const caPrivateKeyPem = str(set, "caPrivateKeyPem") ?? "";
    const csr = wrapError(ctx, `input "certRequestPem": Failed to parse certificate request PEM`, () =>
        parseCertificateRequest(decodeTypedPem(certRequestPem, "CERTIFICATE REQUEST")),
    );
    const caKey = wrapError(ctx, `input "caPrivateKeyPem": Failed to parse CA private key PEM`, () => parsePrivateKeyPem(caPrivateKeyPem));
    const caCert = wrapError(ctx, `input "caCertPem": Failed to parse CA certificate PEM`, () => parseCaCertificate(decodeTypedPem(caCertPem, "CERTIFICATE")));
    // The provider only warns when caCert is not a CA ("Potentially Invalid Certificate Authority").
    const settings = certSettings(set, false);
    const template: CertTemplate = { subject: csr.subject, dnsNames: csr.dnsNames, ipAddresses: csr.ipAddresses, uris: csr.uris };
    const cert = wrapError(ctx, "certificate", () => issueCertificate(template, settings, caCert, csr.publicKey, caKey, now));
    const outputs: Record<string, unknown> = {
        ...certOutputs(set, settings, cert),
        certRequestPem,
        caCertPem,
        caPrivateKeyPem,
        caKeyAlgorithm: caKey.algorithm,
    };
    return { id: cert.id, outputs, secretOutputs: presentSecrets(outputs, ["caPrivateKeyPem"]) };
}
