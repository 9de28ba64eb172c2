#!/usr/bin/env bash
# run.sh - `make run`: a working platform on this machine in one command.
#   - ./run/ is created with `msspd init --demo` if it does not exist
#     (configuration, development PKI, demo AP, demo users and phones);
#   - msspd and mss-phone --demo start (their output comes here);
#   - the endpoints and a ready mss-ap and curl command are printed;
#   - Ctrl-C stops both cleanly.
set -u
BUILD=${1:-build/debug}
RUN=${MSSP_RUN_DIR:-run}
BIN=$BUILD/bin

if [ ! -f "$RUN/msspd.conf" ]; then
  echo "== creating $RUN/ (msspd init --demo)"
  "$BIN/msspd" init --data-dir "$RUN" --demo || exit 1
fi
conf() { awk -v s="[$1]" -v k="$2" '$0 == s { f = 1; next } /^\[/ { f = 0 } f && $1 == k { print $3; exit }' "$RUN/msspd.conf"; }
AE_PORT=$(conf ae port); AFE_PORT=$(conf afe port); ADMIN_PORT=$(conf admin port)
ME_PORT=$(conf me port); ME_PORT=${ME_PORT:-$((AE_PORT + 1))}
PKI_PORT=$(conf me pki_port); PKI_PORT=${PKI_PORT:-$((AE_PORT + 5))}
MESH_PORT=$(conf mesh port); MESH_PORT=${MESH_PORT:-$((AE_PORT + 6))}
if [ ! -f "$RUN/admin/admin.conf" ]; then
  echo "note: $RUN/ was made before the ME existed (no admin/ accounts);"
  echo "      remove it (rm -rf $RUN) and run make run again for the ME and the console."
fi

# The curl example's request: a template with a fresh AP_TransID and
# Instant filled in at each use (the AE refuses an Instant out of skew).
tmpl=$RUN/demo/sign-request.xml
cat >"$tmpl" <<'XML'
<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://www.w3.org/2003/05/soap-envelope">
 <soapenv:Body>
  <MSS_Signature>
   <mss:MSS_SignatureReq xmlns:mss="http://uri.etsi.org/TS102204/v1.1.2#" MajorVersion="1" MinorVersion="1" MessagingMode="synch" TimeOut="60">
    <mss:AP_Info AP_ID="http://demo.ap/" AP_PWD="demo" AP_TransID="@ID@" Instant="@NOW@"/>
    <mss:MSSP_Info><mss:MSSP_ID/></mss:MSSP_Info>
    <mss:MobileUser><mss:MSISDN>+35847000001</mss:MSISDN></mss:MobileUser>
    <mss:DataToBeSigned MimeType="text/plain" Encoding="UTF-8">Sign in to Demo AP?</mss:DataToBeSigned>
    <mss:SignatureProfile><mss:mssURI>http://alauda.mobi/nonRepudiation</mss:mssURI></mss:SignatureProfile>
   </mss:MSS_SignatureReq>
  </MSS_Signature>
 </soapenv:Body>
</soapenv:Envelope>
XML

MSSPD= PHONE=
stop() {
  trap - INT TERM
  echo
  echo "== stopping"
  [ -n "$PHONE" ] && kill -TERM "$PHONE" 2>/dev/null
  [ -n "$MSSPD" ] && kill -TERM "$MSSPD" 2>/dev/null
  wait
  exit 0
}
trap stop INT TERM

"$BIN/msspd" --data-dir "$RUN" &
MSSPD=$!
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$ADMIN_PORT/healthz" >/dev/null 2>&1 && break
  kill -0 "$MSSPD" 2>/dev/null || { echo "msspd did not start"; exit 1; }
  sleep 0.1
done
"$BIN/mss-phone" --data-dir "$RUN" --demo &
PHONE=$!
sleep 1

cat <<TXT

== OpenMSSP is running (data in $RUN/)
   AE (APs, mutual TLS)  https://localhost:$AE_PORT/soap/services/MSS_SignaturePort
                         https://localhost:$AE_PORT/rest/service  (JSON)
   AFE (phones)          wss://localhost:$AFE_PORT/app/v1/ws
   ME (RA/admin, mTLS)   https://localhost:$ME_PORT/  console, /api/v1 (OpenAPI: /api/v1/openapi.json)
   pki (relying parties) http://127.0.0.1:$PKI_PORT/ocsp  /crl
   mesh (peer MSSPs)     https://localhost:$MESH_PORT/soap/services/  (msspctl peer|route)
   admin (loopback)      http://127.0.0.1:$ADMIN_PORT/metrics  /healthz
   accounts              admin admin2 ra auditor: $RUN/admin/<name>.crt/.key/.conf
   demo AP http://demo.ap/ ($RUN/demo/), demo users +35847000001..008 (mss-phone --demo)

== sign for +35847000001 with mss-ap (SOAP; add --json for JSON, --mode async|ss):
$BIN/mss-ap --config $RUN/demo/mss-ap.conf sign --msisdn +35847000001

== the same with curl:
curl -sS --cacert $RUN/demo/tls-ca.crt --cert $RUN/demo/ap.crt --key $RUN/demo/ap.key -H 'Content-Type: text/xml; charset=utf-8' --data-binary "\$(sed -e "s/@NOW@/\$(date -u +%Y-%m-%dT%H:%M:%SZ)/" -e "s/@ID@/A\$RANDOM\$RANDOM/" $tmpl)" https://localhost:$AE_PORT/soap/services/MSS_SignaturePort

== register a new user with a fresh phone (as the RA operator), then sign:
$BIN/msspctl --data-dir $RUN --account ra user create +35847001001 --given-name Anna --surname Virtanen
$BIN/msspctl --data-dir $RUN --account ra user activate +35847001001
$BIN/mss-phone activate --dir $RUN/phones --msisdn +35847001001 --code <the code printed above>
$BIN/msspctl --data-dir $RUN --account ra user keys +35847001001 --profile default-app --wait 60
$BIN/mss-ap --config $RUN/demo/mss-ap.conf sign --msisdn +35847001001

== the web console: import the admin certificate into your browser, then open https://localhost:$ME_PORT/
openssl pkcs12 -export -in $RUN/admin/admin.crt -inkey $RUN/admin/admin.key -out admin.p12

Ctrl-C stops msspd and mss-phone.
TXT
wait
