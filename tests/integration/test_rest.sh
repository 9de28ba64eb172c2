#!/usr/bin/env bash
# The REST gateway end to end (issue 6, docs/internals/rest.md): msspd +
# mss-phone --demo; HTTP Basic and the HMAC API key without a client
# certificate, refusals (no credentials, wrong key, stale Date, tampered
# body, throttling with Retry-After, a rate-limited refusal log, certificate
# and credentials of two APs, a duplicate Basic user name), per-operation
# paths, laverca-rest's minimal body and the Swisscom JSON body, answers in
# the samples' exact compact shape, the OpenAPI document, mss-ap's REST
# options, and SOAP/JSON parity over the bad-input corpus (J-10).
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib.sh
setup_platform

U=https://127.0.0.1:$AE_PORT
CORPUS=tests/data/corpus
BASIC=$(cat "$DIR/demo/rest-basic")
KEY=$(cat "$DIR/demo/rest-api-key")
APID=http://demo.ap/

# curl to the AE WITHOUT a client certificate; prints the body, then "HTTP <code>"
rest_curl() {
  curl -sS --max-time 30 --cacert "$DIR/demo/tls-ca.crt" -w '\nHTTP %{http_code}\n' "$@"
}
jpost() { # jpost PATH BODY [curl args...]
  local path=$1 body=$2; shift 2
  rest_curl -X POST -H 'Content-Type: application/json;charset=UTF-8' --data-binary "$body" \
    "$@" "$U$path"
}
http_date() { LC_ALL=C date -u -d "@${1:-$(date +%s)}" '+%a, %d %b %Y %H:%M:%S GMT'; }
# the API-key Authorization for DATE PATH BODY [KEY] [AP_ID] (protocol.md §10)
apikey_auth() {
  local date=$1 path=$2 body=$3 key=${4:-$KEY} id=${5:-$APID} mac
  mac=$(printf '%s\n%s\n%s\n%s\n%s\n' "$date" POST "127.0.0.1:$AE_PORT" "$path" "$body" |
    openssl dgst -sha256 -hmac "$key" -r | cut -d' ' -f1)
  printf 'Basic %s' "$(printf '%s:%s' "$(printf '%s' "$id" | base64 -w0)" "$mac" | base64 -w0)"
}
code_of() { # the TS 102 204 code of a JSON or SOAP answer
  sed -n 's/.*"SubCode":{"Value":"_\([0-9]*\)".*/\1/p; s/.*mss:_\([0-9]*\)<.*/\1/p;
          s/.*"StatusCode":{"Value":"\([0-9]*\)"}.*/\1/p; s/.*StatusCode Value="\([0-9]*\)".*/\1/p' |
    head -1
}
detail_of() {
  sed -n 's/.*"Detail":"\([^"]*\)".*/\1/p; s/.*<ns1:detail[^>]*>\([^<]*\)<.*/\1/p' | head -1
}
# variable values replaced, for a shape comparison with the samples
norm() {
  sed -E 's/"(AP_ID|AP_TransID|Instant|URI|MSSP_TransID|MSISDN|SignatureProfile|Base64Signature|Detail)":"[^"]*"/"\1":"X"/g'
}
sample() { "$BIN/msspctl" decode "${MSSP_SHARED:-../shared}/etsi/samples/rest/$1" | norm; }

LAVERCA=$(cat "$CORPUS/clients/laverca-rest/sign-minimal.json" |
  sed 's|http://alauda.mobi/digitalSignature|mss:demo:sign:loa3:app|')

# ---- the OpenAPI document --------------------------------------------------------------
out=$(rest_curl "$U/rest/openapi.json")
check "GET /rest/openapi.json: 200 without a certificate" grep -q '^HTTP 200' <<<"$out"
check "it is OpenAPI 3.0.3 with the per-operation paths" \
  grep -q '"openapi": "3.0.3"' <<<"$out"
check "... listing /rest/service/sign" grep -q '"/rest/service/sign"' <<<"$out"
curl -sS --max-time 30 --cacert "$DIR/demo/tls-ca.crt" -o "$WORK/oapi.json" "$U/rest/openapi.json"
cmp -s "$WORK/oapi.json" web/rest-openapi.json &&
  ok "the served document is web/rest-openapi.json" || nok "served document differs"
hdr=$(curl -sS --max-time 30 --cacert "$DIR/demo/tls-ca.crt" -D - -o /dev/null -X POST \
  -H 'Content-Type: application/json' --data-binary '{}' "$U/rest/openapi.json")
check "POST /rest/openapi.json: 405" grep -q '^HTTP/1.1 405' <<<"$hdr"
check "... with Allow: GET" grep -qi '^Allow: GET' <<<"$hdr"

# ---- no credentials --------------------------------------------------------------------
hdr=$(curl -sS --max-time 30 --cacert "$DIR/demo/tls-ca.crt" -D - -o /dev/null -X POST \
  -H 'Content-Type: application/json' --data-binary "$LAVERCA" "$U/rest/service")
check "REST without certificate or credentials: 401" grep -q '^HTTP/1.1 401' <<<"$hdr"
check "... with WWW-Authenticate: Basic realm=\"OpenMSSP\"" \
  grep -qi '^WWW-Authenticate: Basic realm="OpenMSSP"' <<<"$hdr"
out=$(rest_curl -X POST -H 'Content-Type: application/soap+xml' \
  --data-binary @"$CORPUS/bad/BASE-sign.soap.xml" "$U/soap/services/MSS_SignaturePort")
check "SOAP without a certificate: fault 104" grep -q 'mss:_104' <<<"$out"

# ---- HTTP Basic: laverca-rest's minimal body, signed by +35847000001 ------------------------
out=$(jpost /rest/service "$LAVERCA" -u "$BASIC")
check "Basic + laverca-rest minimal sign: 200" grep -q '^HTTP 200' <<<"$out"
check "... 500 SIGNATURE for $APID" \
  grep -q "\"AP_ID\":\"$APID\".*\"StatusCode\":{\"Value\":\"500\"},\"StatusMessage\":\"SIGNATURE\"" <<<"$out"
b64=$(sed -n 's/.*"Base64Signature":"\([^"]*\)".*/\1/p' <<<"$out")
printf '%s' "$b64" | base64 -d >"$WORK/lav.p7" 2>/dev/null
if openssl cms -verify -inform DER -in "$WORK/lav.p7" -CAfile "$DIR/demo/user-ca.crt" \
  -purpose any -out "$WORK/lav.txt" >/dev/null 2>&1 && [ "$(cat "$WORK/lav.txt")" = "Login to demo.ap" ]; then
  ok "the CMS signature verifies over the DTBS"
else
  nok "the CMS signature does not verify"
fi
# the answer is the sample's exact compact shape (variable values normalised)
want=$(sample rest-response-signature.json | sed -E 's/,"ServiceResponses":\[[^]]*\]//')
got=$(sed '$d' <<<"$out" | norm)
[ "$got" = "$want" ] && ok "signature answer: the sample's shape byte for byte" ||
  nok "signature answer shape: got $got want $want"
out=$(jpost /rest/service "$LAVERCA" -u "demo-ap:wrong-password-0123456789")
check "Basic with a wrong password: 401" grep -q '^HTTP 401' <<<"$out"
out=$(jpost /rest/service "$LAVERCA" -u "$APID:$(cut -d: -f2 <<<"$BASIC")")
check "Basic with the AP_ID (has ':') instead of rest_user: 401" grep -q '^HTTP 401' <<<"$out"

# ---- the API key ------------------------------------------------------------------------
body=$(sed 's/"A5b2e7c4d[^"]*"/"K1"/' <<<"$LAVERCA")
d=$(http_date)
out=$(jpost /rest/service "$body" -H "Date: $d" -H "Authorization: $(apikey_auth "$d" /rest/service "$body")")
check "API key: 200, 500 SIGNATURE" grep -q '"StatusCode":{"Value":"500"}' <<<"$out"
out=$(jpost /rest/service "$body" -H "Date: $d" \
  -H "Authorization: $(apikey_auth "$d" /rest/service "$body" "${KEY}x")")
check "API key: a wrong key: 401" grep -q '^HTTP 401' <<<"$out"
old=$(http_date $(( $(date +%s) - 400 )))
out=$(jpost /rest/service "$body" -H "Date: $old" -H "Authorization: $(apikey_auth "$old" /rest/service "$body")")
check "API key: a stale Date (400 s): 401" grep -q '^HTTP 401' <<<"$out"
out=$(jpost /rest/service "${body/Login/Pay 1000 EUR}" -H "Date: $d" \
  -H "Authorization: $(apikey_auth "$d" /rest/service "$body")")
check "API key: a tampered body: 401" grep -q '^HTTP 401' <<<"$out"
out=$(jpost /rest/service/sign "$body" -H "Date: $d" \
  -H "Authorization: $(apikey_auth "$d" /rest/service "$body")")
check "API key: MAC for another path: 401" grep -q '^HTTP 401' <<<"$out"

# ---- per-operation paths ---------------------------------------------------------------------
prof='{"MSS_ProfileReq":{"AP_Info":{},"MobileUser":{"MSISDN":"+35847000001"}}}'
out=$(jpost /rest/service/profile "$prof" -u "$BASIC")
check "/rest/service/profile with AP_Info {}: 100 and the profiles" \
  grep -q '"StatusCode":{"Value":"100"}.*\|mss:demo:sign:loa3:app' <<<"$out"
out=$(jpost /rest/service/sign "$prof" -u "$BASIC")
check "/rest/service/sign with a profile query: 101" test "$(code_of <<<"$out")" = 101
check "... as HTTP 500" grep -q '^HTTP 500' <<<"$out"
out=$(jpost /rest/service/status "$LAVERCA" -u "$BASIC")
check "/rest/service/status with a signature request: 101" test "$(code_of <<<"$out")" = 101
out=$(jpost /rest/service/bogus "$prof" -u "$BASIC")
check "an unknown sub-path: 404" grep -q '^HTTP 404' <<<"$out"
out=$(rest_curl -u "$BASIC" "$U/rest/service/sign")
check "GET on a REST path: 405" grep -q '^HTTP 405' <<<"$out"

# async + status through the per-operation paths, the samples' shapes
async=$(sed 's/"MessagingMode":"synch"/"MessagingMode":"asynchClientServer"/; s/"A5b2e7c4d[^"]*"/"AS1"/' <<<"$LAVERCA" |
  sed 's/+35847000001/+35847000004/')
out=$(jpost /rest/service/sign "$async" -u "$BASIC")
want=$(sample rest-response-async-signature.json)
got=$(sed '$d' <<<"$out" | norm)
[ "$got" = "$want" ] && ok "async answer: the sample's shape" || nok "async shape: got $got want $want"
tid=$(sed -n 's/.*"MSSP_TransID":"\([^"]*\)".*/\1/p' <<<"$out")
st="{\"MSS_StatusReq\":{\"AP_Info\":{\"AP_TransID\":\"AS1\"},\"MSSP_TransID\":\"$tid\",\"MobileUser\":{\"MSISDN\":\"+35847000004\"}}}"
out=$(jpost /rest/service/status "$st" -u "$BASIC")
want=$(sample rest-response-status-outstanding.json)
# no MSSP_TransID: the schema keeps it for notifications only
got=$(sed '$d' <<<"$out" | norm)
[ "$got" = "$want" ] && ok "status 504 answer: the sample's shape" || nok "status shape: got $got want $want"
# a user who cancels: the fault sample's shape
cancel=$(sed 's/+35847000001/+35847000002/; s/"A5b2e7c4d[^"]*"/"C1"/' <<<"$LAVERCA")
out=$(jpost /rest/service "$cancel" -u "$BASIC")
want=$(sample rest-response-fault-user-cancel.json)
got=$(sed '$d' <<<"$out" | norm)
[ "$got" = "$want" ] && ok "fault 401 answer: the sample's shape" || nok "fault shape: got $got want $want"

# ---- the Swisscom JSON body (mobileid-sign.sh -t JSON) with the certificate -------------------
sw=$(sed "s/\"Instant\": *\"[^\"]*\"/\"Instant\": \"$(now_instant)\"/; s|http://mid.swisscom.ch/MID/v1/AuthProfile1|mss:demo:sign:loa3:app|" \
  "$CORPUS/clients/swisscom-shell/sign.json")
out=$(ae_curl -X POST -H 'Content-Type: application/json;charset=utf-8' -H 'Accept: application/json' \
  --data-binary "$sw" -w '\nHTTP %{http_code}\n' "$U/rest/service")
check "Swisscom JSON body over mutual TLS: 502 (validate AS) or 500" \
  grep -Eq '"StatusCode":\{"Value":"50[02]"\}' <<<"$out"
check "... compact \"Key\":\"value\" pairs the script parses" grep -q '"MSISDN":"+35847000001"' <<<"$out"

# ---- a second AP, REST only (no certificate), through the ME ---------------------------------
head -c 24 /dev/urandom | base64 | tr -d '\n/+=' >"$WORK/pw2"
PW2=$(cat "$WORK/pw2")
out=$(me_api admin POST /aps "{\"id\":\"http://rest.only/\",\"name\":\"REST only\",\"cert_sha256\":[],\"profiles\":[\"*\"],\"rest_user\":\"rest-only\",\"rest_password\":\"$PW2\"}")
appr=$(sed -n 's/.*"approval": *"\(A[0-9a-f]*\)".*/\1/p' <<<"$out")
check "a REST-only AP: pending approval" test -n "$appr"
out=$(me_api admin2 GET "/approvals")
if grep -q "$PW2" <<<"$out"; then nok "the approval shows the password"; else ok "the approval never shows the password"; fi
out=$(me_api admin2 POST "/approvals/$appr/approve")
check "... approved" grep -q '^HTTP 20[01]' <<<"$out"
out=$(me_api auditor GET "/aps/http%3A%2F%2Frest.only%2F")
check "GET AP: rest_password_set, no hash" grep -q '"rest_password_set": *true' <<<"$out"
if grep -q 'rest_password_hash\|api_key"\|'"$PW2" <<<"$out"; then nok "GET AP leaks a secret"; else ok "GET AP leaks no secret"; fi
out=$(me_api auditor GET "/aps/http%3A%2F%2Fdemo.ap%2F")
if grep -q "$KEY" <<<"$out"; then nok "the demo AP's API key is returned"; else ok "the API key is never returned"; fi
out=$(me_api admin POST /aps '{"id":"http://weak.pw/","cert_sha256":[],"profiles":["*"],"rest_user":"weak","rest_password":"short"}')
check "a password under 16 characters: 400" grep -q '^HTTP 400' <<<"$out"
sleep 1.5 # the AE reloads the AP table on its generation
body2=$(sed 's/"A5b2e7c4d[^"]*"/"R1"/' <<<"$LAVERCA")
out=$(jpost /rest/service "$body2" -u "rest-only:$PW2")
check "the REST-only AP signs with Basic" grep -q '"AP_ID":"http://rest.only/"' <<<"$out"
out=$(ae_curl -X POST -H 'Content-Type: application/json' -u "rest-only:$PW2" \
  --data-binary "$body2" -w '\nHTTP %{http_code}\n' "$U/rest/service")
check "the demo AP's certificate + another AP's credentials: 104" test "$(code_of <<<"$out")" = 104
out=$(jpost /rest/service "$(sed 's|"AP_Info":{|"AP_Info":{"AP_ID":"http://demo.ap/",|' <<<"$body2")" -u "rest-only:$PW2")
check "credentials of one AP, AP_ID of another: 104" test "$(code_of <<<"$out")" = 104

# ---- mss-ap's REST options ----------------------------------------------------------------
out=$(ap sign --msisdn +35847000001 --basic-file "$DIR/demo/rest-basic" 2>&1)
check "mss-ap --basic-file: signed and verified" grep -q "signature verified" <<<"$out"
out=$(MSS_AP_BASIC=$BASIC ap sign --msisdn +35847000001 --basic-file env --rest-path 2>&1)
check "mss-ap --basic-file env --rest-path: signed" grep -q "signature verified" <<<"$out"
out=$(ap sign --msisdn +35847000001 --api-key "$APID:$DIR/demo/rest-api-key" --rest-path \
  --mode async --poll-ms 200 2>&1)
check "mss-ap --api-key --rest-path async + status: signed" grep -q "signature verified" <<<"$out"
out=$(MSS_AP_BASIC=$BASIC ap profile --msisdn +35847000001 --basic-file env --rest-path 2>&1)
check "mss-ap --basic-file env profile" grep -q "mss:demo:sign:loa3:app" <<<"$out"
# a password on the command line (ps, shell history) is not offered
ap profile --msisdn +35847000001 --basic "$BASIC" >"$WORK/basic.out" 2>&1
check "mss-ap --basic USER:PASSWORD: refused (exit 2)" test $? = 2
check "... without echoing the password" bash -c "! grep -qF -- '$(cut -d: -f2 <<<"$BASIC")' '$WORK/basic.out'"
head -c 300 /dev/zero | tr '\0' k >"$WORK/long-key"
ap profile --msisdn +35847000001 --api-key "$APID:$WORK/long-key" >"$WORK/long.out" 2>&1
check "mss-ap: a key file over 256 characters is refused, not cut" \
  bash -c "test $? = 2 && grep -q 'longer than' '$WORK/long.out'"
# ME: a Basic user name names one AP
out=$(me_api admin POST /aps "{\"id\":\"http://dup.user/\",\"cert_sha256\":[],\"profiles\":[\"*\"],\"rest_user\":\"demo-ap\",\"rest_password\":\"$PW2\"}")
check "ME: an AP with another AP's rest_user: 409" grep -q '^HTTP 409' <<<"$out"

# ---- SOAP/JSON parity over the corpus (J-10): same code, same detail ----------------------------
n=0
for j in "$CORPUS"/bad/*.json; do
  base=${j%.json}; s=$base.soap.xml
  [ -f "$s" ] || continue
  name=$(basename "$base")
  # documented divergence: "asynch" is the Swisscom REST spelling, JSON only
  [ "$name" = A-16-messagingmode-asynch ] && continue
  n=$((n + 1)); now=$(now_instant)
  sout=$(sed -E "s/Instant=\"[^\"]*\"/Instant=\"$now\"/; s/AP_TransID=\"[^\"]*\"/AP_TransID=\"PS$n\"/" "$s" |
    ae_curl -X POST -H 'Content-Type: application/soap+xml' --data-binary @- "$U/soap/services/MSS_SignaturePort")
  jout=$(sed -E "s/\"Instant\":\"[^\"]*\"/\"Instant\":\"$now\"/; s/\"AP_TransID\":\"[^\"]*\"/\"AP_TransID\":\"PJ$n\"/" "$j" |
    ae_curl -X POST -H 'Content-Type: application/json' --data-binary @- "$U/rest/service")
  sc=$(code_of <<<"$sout"); jc=$(code_of <<<"$jout")
  # a parser's own words name its syntax ("Malformed XML" / "Malformed JSON")
  sd=$(detail_of <<<"$sout" | sed -E 's/XML|JSON/ENC/g'); jd=$(detail_of <<<"$jout" | sed -E 's/XML|JSON/ENC/g')
  if [ -n "$sc" ] && [ "$sc" = "$jc" ] && [ "$sd" = "$jd" ]; then
    ok "parity $name: $sc${sd:+ ($sd)}"
  else
    nok "parity $name: SOAP $sc '$sd' vs JSON $jc '$jd'"
  fi
done
check "parity: at least 10 SOAP/JSON pairs compared" test "$n" -ge 10

# ---- throttling: a password cannot be brute-forced ---------------------------------------------
for i in $(seq 1 12); do
  jpost /rest/service "$LAVERCA" -u "demo-ap:guess-number-$i-0123456789" >"$WORK/bf.$i"
done
check "the 11th failed attempt for one AP: 429" grep -q '^HTTP 429' "$WORK/bf.11"
out=$(jpost /rest/service "$LAVERCA" -u "$BASIC")
check "... then even the right password: 429 (not checked)" grep -q '^HTTP 429' <<<"$out"
hdr=$(curl -sS --max-time 30 --cacert "$DIR/demo/tls-ca.crt" -D - -o /dev/null -X POST \
  -H 'Content-Type: application/json' --data-binary "$LAVERCA" -u "$BASIC" "$U/rest/service")
ra=$(sed -n 's/^Retry-After: *\([0-9]*\).*/\1/ip' <<<"$hdr")
check "... Retry-After: the rest of the 60 s window (got '$ra')" \
  bash -c "[ -n '$ra' ] && [ '$ra' -gt 1 ] && [ '$ra' -le 60 ]"
nlog=$(grep -c 'ae.rest_auth_refused' "$WORK/msspd.log")
check "refusals are logged rate-limited: $nlog lines for 14+ refusals" \
  bash -c "[ '$nlog' -ge 1 ] && [ '$nlog' -le 4 ]"
check "failed credentials are logged without the secret" \
  bash -c "grep -q ae.rest_auth_refused '$WORK/msspd.log' && ! grep -q 'guess-number' '$WORK/msspd.log' && ! grep -q '$KEY' '$WORK/msspd.log'"

finish
