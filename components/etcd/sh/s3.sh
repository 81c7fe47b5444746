# shellcheck shell=bash disable=SC2154 # the parameters are the caller's
# etcd-ha S3 client: path-style requests to an S3-compatible store, signed by curl itself (--aws-sigv4, curl
# 7.75 or later: Ubuntu 24.04 has 8.5, Debian 12 7.88), so a member needs no new package. Sourced; everything
# is a function, nothing runs at load. Callers run under `set -euo pipefail` and set:
#   s3_endpoint   https://host[:port], no path (only https: the keys sign every request and snapshots are data)
#   s3_bucket     the bucket
#   s3_region     the region requests are signed for
#   s3_ca         a CA bundle file for the store's certificate, or empty for the system's
#   s3_auth       a curl config file (root, 0600) holding `user = "ACCESS_KEY:SECRET_KEY"`: the keys never reach a
#                 command line, the environment or any output
#   s3_timeout    the longest one request may take, seconds
# Object keys are limited to letters, digits, '.', '_', '-' and '/' (no leading '/', no '//'): they need no
# escaping in a URL path, and the keys etcd-ha writes are all of this form.

# The sha256 of an empty body: what S3 expects in x-amz-content-sha256 for GET, HEAD and DELETE.
S3_EMPTY_SHA256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855

# s3_key_ok KEY: whether KEY is an object key of the form above.
s3_key_ok() {
  [[ $1 =~ ^[A-Za-z0-9._-][A-Za-z0-9._/-]*$ ]] && [[ $1 != *//* ]]
}

# s3_qenc TEXT: TEXT percent-encoded for a query value (everything but A-Z a-z 0-9 . _ ~ -; '/' too, which
# the signature needs encoded). ASCII only.
s3_qenc() {
  local s=$1 out="" c i
  for ((i = 0; i < ${#s}; i++)); do
    c=${s:i:1}
    case "$c" in
      [A-Za-z0-9._~-]) out+=$c ;;
      *)
        printf -v c '%%%02X' "'$c"
        out+=$c
        ;;
    esac
  done
  printf '%s' "$out"
}

# s3_curl ARGS...: curl with the store's TLS, the keys and the signature; fails on any HTTP error (its body,
# S3's error XML, goes to stderr: it names the error, never a key).
s3_curl() {
  local ca=()
  if [ -n "${s3_ca-}" ]; then
    ca=(--cacert "$s3_ca")
  fi
  curl -sS --fail-with-body --proto =https --connect-timeout 10 --max-time "${s3_timeout:-300}" \
    "${ca[@]}" -K "$s3_auth" --aws-sigv4 "aws:amz:${s3_region}:s3" "$@"
}

# s3_url KEY: the object's path-style URL (fails for a key not of the form above).
s3_url() {
  if ! s3_key_ok "$1"; then
    echo "object key '$1' is not letters, digits, '.', '_', '-' and single '/' only" >&2
    return 1
  fi
  printf '%s/%s/%s' "$s3_endpoint" "$s3_bucket" "$1"
}

# s3_put FILE KEY SHA256: uploads FILE as KEY. The store checks the body against SHA256 (x-amz-content-sha256)
# and keeps it as the object's metadata (x-amz-meta-sha256), so a read-back can compare without a sidecar.
s3_put() {
  local url out
  url=$(s3_url "$2") || return 1
  if ! out=$(s3_curl -T "$1" -H "x-amz-content-sha256: $3" -H "x-amz-meta-sha256: $3" "$url" 2>&1); then
    echo "upload of $2 to $s3_endpoint/$s3_bucket failed: $(tr -s '\r\n' '  ' <<<"$out" | cut -c1-400)" >&2
    return 1
  fi
}

# s3_head KEY: prints "<size> <sha256 metadata>" of the object (the metadata empty when it has none); fails when
# it is missing or the store does not answer.
s3_head() {
  local url headers line size="" meta=""
  url=$(s3_url "$1") || return 1
  headers=$(s3_curl -I -H "x-amz-content-sha256: $S3_EMPTY_SHA256" "$url") || return 1
  while IFS= read -r line; do
    line=${line%$'\r'}
    case "${line,,}" in
      content-length:*) size=${line#*:} ;;
      x-amz-meta-sha256:*) meta=${line#*:} ;;
    esac
  done <<<"$headers"
  printf '%s %s\n' "${size// /}" "${meta// /}"
}

# s3_get KEY OUT: downloads the object to the file OUT.
s3_get() {
  local url
  url=$(s3_url "$1") || return 1
  s3_curl -H "x-amz-content-sha256: $S3_EMPTY_SHA256" -o "$2" "$url"
}

# s3_delete KEY: deletes the object (S3 answers success for a missing one too).
s3_delete() {
  local url
  url=$(s3_url "$1") || return 1
  s3_curl -X DELETE -H "x-amz-content-sha256: $S3_EMPTY_SHA256" -o /dev/null "$url"
}

# s3_list PREFIX [PAGE]: one line "<key> <size> <last modified>" per object whose key starts with PREFIX, in key
# order (ListObjectsV2, PAGE keys per request, default 1000, at most 1000 requests). Keys not of the form above
# are left out.
s3_list() {
  local prefix=$1 page=${2:-1000} token="" body query chunk key size modified n
  for ((n = 0; n < 1000; n++)); do
    # Parameters in name order: curl signs the query as written, and SigV4 wants it sorted.
    query="list-type=2&max-keys=$page&prefix=$(s3_qenc "$prefix")"
    if [ -n "$token" ]; then
      query="continuation-token=$(s3_qenc "$token")&$query"
    fi
    body=$(s3_curl -H "x-amz-content-sha256: $S3_EMPTY_SHA256" "$s3_endpoint/$s3_bucket?$query") || return 1
    while IFS= read -r chunk; do
      [[ $chunk =~ \<Key\>([^\<]*)\</Key\> ]] || continue
      key=${BASH_REMATCH[1]}
      [[ $chunk =~ \<Size\>([0-9]+)\</Size\> ]] || continue
      size=${BASH_REMATCH[1]}
      [[ $chunk =~ \<LastModified\>([^\<]*)\</LastModified\> ]] || continue
      modified=${BASH_REMATCH[1]}
      if s3_key_ok "$key"; then
        printf '%s %s %s\n' "$key" "$size" "$modified"
      fi
    done <<<"${body//<Contents>/$'\n'}"
    if [[ ! $body =~ \<IsTruncated\>true\</IsTruncated\> ]]; then
      return 0
    fi
    if [[ ! $body =~ \<NextContinuationToken\>([^\<]*)\</NextContinuationToken\> ]]; then
      echo "listing $prefix in $s3_bucket: a truncated page without a continuation token" >&2
      return 1
    fi
    token=${BASH_REMATCH[1]}
  done
  echo "listing $prefix in $s3_bucket: more than 1000 pages" >&2
  return 1
}
