#!/bin/sh
# `spectrumd scan` end to end: the reference-compatible files on a good
# checkpoint, and a clear one-line message with exit status 2 for each kind
# of bad input (none may crash).
set -u
top_builddir=${top_builddir:-.}
SPD=$top_builddir/spectrumd
FIX=$top_builddir/tests/spectrumd-fixture
T=$(mktemp -d "${TMPDIR:-/tmp}/spd-scan.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
n=0 fails=0

ok() {	# ok COND-STATUS DESCRIPTION
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then echo "ok $n - $2"
	else echo "not ok $n - $2"; fails=$((fails + 1)); fi
}

# le64 N: the 8-byte little-endian encoding of N, as printf octal escapes.
le64() {
	v=$1 s=""
	for _ in 1 2 3 4 5 6 7 8; do
		s="$s\\$(printf '%03o' $((v % 256)))"
		v=$((v / 256))
	done
	printf '%s' "$s"
}

# mkst FILE HEADER NDATA [LEN]: a safetensors file with NDATA zero data bytes;
# LEN overrides the header length field.
mkst() {
	len=${4:-$(printf '%s' "$2" | wc -c)}
	{ printf "$(le64 "$len")"; printf '%s' "$2"; head -c "$3" /dev/zero; } >"$1"
}

# expect_bad NAME PATH WORD: scan exits 2 with a one-line message naming
# PATH's file and containing WORD.
expect_bad() {
	"$SPD" scan -q --out "$T/out" "$2" >"$T/stdout" 2>"$T/stderr"
	st=$?
	lines=$(wc -l <"$T/stderr")
	grep -qi -- "$3" "$T/stderr" && [ "$st" -eq 2 ] && [ "$lines" -eq 1 ]
	ok $? "$1: exit $st, message: $(head -c 200 "$T/stderr")"
}

# --- a good checkpoint -------------------------------------------------------
"$FIX" checkpoint "$T/run/checkpoint-10" --layers 4 --hidden 64 \
    --intermediate 96 --vocab 128 --dtype BF16 --shards 2 --step 10 >/dev/null
ok $? "fixture writer made a sharded checkpoint"
"$SPD" scan -q --out "$T/out" --top-percent 50 "$T/run/checkpoint-10" \
    >"$T/table" 2>"$T/err"
ok $? "scan of a good checkpoint exits 0"
ok "$(test -s "$T/out/snr_results_checkpoint-10.json"; echo $?)" \
    "snr_results_checkpoint-10.json written"
Y="$T/out/snr_results_checkpoint-10_unfrozenparameters_50percent.yaml"
ok "$(test -s "$Y"; echo $?)" "unfrozen-parameters YAML written"
ok "$(head -1 "$Y" | grep -qx 'unfrozen_parameters:'; echo $?)" \
    "YAML starts with unfrozen_parameters:"
ok "$(grep -qx -- '- ^lm_head.weight\$' "$Y" &&
    grep -qx -- '- ^model.embed_tokens.weight\$' "$Y"; echo $?)" \
    "YAML lists lm_head and embed_tokens patterns"
ok "$(grep -c '^- model\.layers\.[0-9]*\.mlp\.down_proj$' "$Y" |
    grep -qx 2; echo $?)" "50% of 4 down_proj layers = 2 selected"
ok "$(grep -q 'mlp.down_proj' "$T/table"; echo $?)" "summary table printed"
"$SPD" scan -q --out "$T/out" --format regex "$T/run/checkpoint-10" \
    >"$T/regex" 2>/dev/null
ok "$(grep -qx '\^model\\\.layers\\\.[0-9]*\\\.mlp\\\.down_proj\\\.weight\$' \
    "$T/regex"; echo $?)" "regex format: anchored escaped patterns"
"$SPD" scan -q --out "$T/out" --format json "$T/run/checkpoint-10/model-00001-of-00002.safetensors" \
    >/dev/null 2>"$T/err"
ok $? "scan of a single shard file works too"

# --- NaN weights: warned about, left out, the rest analysed, exit 3 -----------
"$FIX" checkpoint "$T/nan" --layers 2 --hidden 32 --intermediate 48 \
    --vocab 64 --dtype F32 --nan-tensor model.layers.1.self_attn.q_proj.weight >/dev/null
"$SPD" scan -q --top-percent 100 --out "$T/out" "$T/nan" >/dev/null 2>"$T/err"
st=$?
ok "$(test $st -eq 3 && grep -q 'warning: 1 matrix with NaN/Inf' "$T/err" &&
    grep -q '^  model.layers.1.self_attn.q_proj.weight: .*NaN' "$T/err"
    echo $?)" "NaN tensor in the warning block on stderr, exit $st (3)"
ok "$(! grep -q 'layers.1.self_attn.q_proj' "$T/out/snr_results_nan.json" &&
    ! grep -q 'NaN' "$T/out/snr_results_nan.json" &&
    grep -q 'layers.0.self_attn.q_proj' "$T/out/snr_results_nan.json"
    echo $?)" "NaN matrix left out of the reference JSON"
ok "$(! grep -q 'layers.1.self_attn.q_proj' \
    "$T/out/snr_results_nan_unfrozenparameters_100percent.yaml" &&
    grep -q 'layers.1.self_attn.k_proj' \
    "$T/out/snr_results_nan_unfrozenparameters_100percent.yaml"
    echo $?)" "NaN matrix never selected, even at 100%"

# --- bad input ----------------------------------------------------------------
: >"$T/empty.safetensors"
expect_bad "empty file" "$T/empty.safetensors" "empty.safetensors"
printf 'abc' >"$T/short.safetensors"
expect_bad "3-byte file" "$T/short.safetensors" "short.safetensors"
cp "$T/run/checkpoint-10/model-00002-of-00002.safetensors" "$T/trunc.safetensors"
truncate -s -1 "$T/trunc.safetensors"
expect_bad "truncated file" "$T/trunc.safetensors" "trunc"
mkst "$T/pasteof.safetensors" '{}' 0 4096
expect_bad "header length past EOF" "$T/pasteof.safetensors" "pasteof"
mkst "$T/huge.safetensors" '{}' 0 200000000
expect_bad "header over 100 MB" "$T/huge.safetensors" "huge"
mkst "$T/notjson.safetensors" 'this is not json' 0
expect_bad "non-JSON header" "$T/notjson.safetensors" "json"
mkst "$T/array.safetensors" '[1,2,3]' 0
expect_bad "non-object header" "$T/array.safetensors" "object"
mkst "$T/dtype.safetensors" '{"w.weight":{"dtype":"F17","shape":[2,2],"data_offsets":[0,16]}}' 16
expect_bad "unknown dtype" "$T/dtype.safetensors" "F17"
mkst "$T/span.safetensors" '{"w.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}}' 12
expect_bad "shape/offset mismatch" "$T/span.safetensors" "w.weight"
mkst "$T/overlap.safetensors" '{"a.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[8,24]}}' 24
expect_bad "overlapping offsets" "$T/overlap.safetensors" "overlap"
mkst "$T/range.safetensors" '{"a.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}' 8
expect_bad "offsets past the data" "$T/range.safetensors" "range.safetensors"
mkst "$T/dup.safetensors" '{"a.weight":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a.weight":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}' 8
expect_bad "duplicate tensor names" "$T/dup.safetensors" "duplicate"
cp -r "$T/run/checkpoint-10" "$T/missing"
rm "$T/missing/model-00002-of-00002.safetensors"
expect_bad "index names a missing shard" "$T/missing" "model-00002-of-00002"
mkdir "$T/noweights"
expect_bad "directory with no weights" "$T/noweights" "noweights"
expect_bad "path that does not exist" "$T/nope" "nope"
"$SPD" scan --top-percent 0 "$T/run/checkpoint-10" >/dev/null 2>&1
ok "$(test $? -eq 2; echo $?)" "--top-percent 0 is rejected with exit 2"
"$SPD" scan --format xml "$T/run/checkpoint-10" >/dev/null 2>&1
ok "$(test $? -eq 2; echo $?)" "--format xml is rejected with exit 2"
"$SPD" scan --help | grep -q 'top-percent'
ok $? "scan --help describes the options"
"$SPD" --version | grep -q '^spectrumd [0-9]'
ok $? "--version prints the version"
"$SPD" scan --help | grep -q '%%'
ok "$(test $? -ne 0; echo $?)" "scan --help prints no literal %%"
"$SPD" scan --top-percent 101 "$T/run/checkpoint-10" >/dev/null 2>"$T/err"
ok "$(test $? -eq 2 && grep -q -- "--top-percent: expected an integer 1..100, got '101'" "$T/err"; echo $?)" \
    "--top-percent 101 names the flag and its range: $(cat "$T/err")"

# --- naming for Axolotl, and a run directory ----------------------------------
"$FIX" checkpoint "$T/run/checkpoint-20" --layers 4 --hidden 64 \
    --intermediate 96 --vocab 128 --dtype BF16 --step 20 >/dev/null
mkdir "$T/run/checkpoint-30"		# being written: no weights yet
"$SPD" scan --out "$T/named" "$T/run" >/dev/null 2>"$T/err"
ok "$(test $? -eq 0 && grep -q 'newest complete checkpoint .*checkpoint-20' "$T/err" &&
    test -s "$T/named/snr_results_run.json"; echo $?)" \
    "scan RUN_DIR scans its newest complete checkpoint, named after the run"
ok "$(grep -q '^  spectrum_model_name: run$' "$T/err" &&
    grep -q '^  spectrum_top_fraction: 0.25$' "$T/err" &&
    grep -q 'SpectrumPlugin' "$T/err" && grep -q '^wrote ' "$T/err"; echo $?)" \
    "scan prints the files it wrote and the Axolotl config lines"
"$SPD" scan -q --out "$T/named" --name meta-llama/Llama_2-7b "$T/run/checkpoint-20" >/dev/null
ok "$(test -s "$T/named/snr_results_meta-llama-Llama-2-7b.json" &&
    test -s "$T/named/snr_results_meta-llama-Llama-2-7b_unfrozenparameters_25percent.yaml"; echo $?)" \
    "--name MODEL: files named with Axolotl's slug ('/' and '_' as '-')"
sed -i 's/^{/{\n  "_name_or_path": "Qwen\/Qwen2.5_0.5B",/' "$T/run/checkpoint-20/config.json"
"$SPD" scan -q --out "$T/named" "$T/run/checkpoint-20" >/dev/null
ok "$(test -s "$T/named/snr_results_Qwen-Qwen2.5-0.5B.json"; echo $?)" \
    "default name: config.json's _name_or_path"
rm -rf "$T/run/checkpoint-20" "$T/run/checkpoint-10/model-00001-of-00002.safetensors"
"$SPD" scan -q --out "$T/named" "$T/run" >/dev/null 2>"$T/err"
ok "$(test $? -eq 2 && grep -q 'no complete checkpoint' "$T/err"; echo $?)" \
    "a run directory with no complete checkpoint: exit 2, $(head -c 160 "$T/err")"

echo "1..$n"
[ "$fails" -eq 0 ]
