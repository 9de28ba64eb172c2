#!/usr/bin/env bash
# kill -9 of msspd while transactions are open (F-01, P-20): after the
# restart every outstanding transaction completes, expires with 208 or
# fails definitely, status queries answer throughout, and no user is
# prompted twice for one transaction.
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib.sh
setup_platform

tid_of() { sed -n 's/^MSSP_TransID: \(T[0-9a-f]*\).*/\1/p' <<<"$1" | head -1; }
status_of() { ap status --trans-id "$1" 2>&1; }

# 1. waiting for the user (F-01c): user 004 never answers
out=$(ap sign --msisdn +35847000004 --mode async --timeout 8 --no-wait 2>&1)
t_wait=$(tid_of "$out")
check "async request for +35847000004 accepted" test -n "$t_wait"
wait_for "$WORK/phone.log" "^PROMPT +35847000004 " 5

# 2. the phone frozen with the prompt in flight (F-01d): user 001
kill -STOP "$PHONE_PID"
out=$(ap sign --msisdn +35847000001 --mode async --timeout 40 --no-wait 2>&1)
t_frozen=$(tid_of "$out")
check "async request for +35847000001 accepted while the phone is frozen" test -n "$t_frozen"
sleep 0.5

# 3. a synchronous request cut by the crash, resent after the restart
inst=$(now_instant); id=sync$RANDOM$RANDOM
req="<?xml version=\"1.0\" encoding=\"UTF-8\"?><soapenv:Envelope xmlns:soapenv=\"http://www.w3.org/2003/05/soap-envelope\"><soapenv:Body><MSS_Signature><mss:MSS_SignatureReq xmlns:mss=\"http://uri.etsi.org/TS102204/v1.1.2#\" MajorVersion=\"1\" MinorVersion=\"1\" MessagingMode=\"synch\" TimeOut=\"40\"><mss:AP_Info AP_ID=\"http://demo.ap/\" AP_PWD=\"x\" AP_TransID=\"$id\" Instant=\"$inst\"/><mss:MSSP_Info><mss:MSSP_ID/></mss:MSSP_Info><mss:MobileUser><mss:MSISDN>+35847000002</mss:MSISDN></mss:MobileUser><mss:DataToBeSigned MimeType=\"text/plain\" Encoding=\"UTF-8\">Crash test</mss:DataToBeSigned><mss:SignatureProfile><mss:mssURI>mss::sign:loa3</mss:mssURI></mss:SignatureProfile></mss:MSS_SignatureReq></MSS_Signature></soapenv:Body></soapenv:Envelope>"
( ae_curl -H 'Content-Type: text/xml' --data-binary "$req" \
    "https://localhost:$AE_PORT/soap/services/MSS_SignaturePort" >"$WORK/sync1.out" 2>&1 ) &
sleep 0.5

kill -9 "$MSSPD_PID"
wait "$MSSPD_PID" 2>/dev/null
ok "msspd killed with -9 with three transactions open"
start_msspd 1 || { nok "msspd restarts"; finish; exit 1; }
ok "msspd restarted on the same data"
check "recovery reports the open transactions" grep -q "ev=recovery.resumed" "$WORK/msspd.log"

out=$(status_of "$t_wait")
check "status query after the restart: 504 while the user has not answered" grep -q "status 504" <<<"$out"

kill -CONT "$PHONE_PID"
res=""
for _ in $(seq 1 80); do
  res=$(status_of "$t_frozen")
  grep -q "status 504" <<<"$res" || break
  sleep 0.25
done
check "the frozen phone's transaction completes after the restart: 500" grep -q "status 500" <<<"$res"

# the resend of the cut synchronous request answers from the same transaction
out=$(ae_curl -H 'Content-Type: text/xml' --data-binary "$req" \
  "https://localhost:$AE_PORT/soap/services/MSS_SignaturePort" -w '\nHTTP %{http_code}\n')
check "the resent synchronous request gets its outcome (401 for +35847000002)" grep -q "mss:_401" <<<"$out"

for _ in $(seq 1 60); do
  res=$(status_of "$t_wait")
  grep -q "status 504" <<<"$res" || break
  sleep 0.25
done
check "the unanswered transaction expires after the restart: 208" grep -q "fault 208" <<<"$res"

# never two prompts for one transaction: count PROMPT lines per nonce
dups=$(awk '$1 == "PROMPT" { n[$3]++ } END { d = 0; for (k in n) if (n[k] > 1) d++; print d }' "$WORK/phone.log")
check "no transaction was prompted twice" test "$dups" -eq 0
check "+35847000004 saw one prompt" test "$(grep -c '^PROMPT +35847000004 ' "$WORK/phone.log")" -eq 1
check "+35847000002 saw one prompt" test "$(grep -c '^PROMPT +35847000002 ' "$WORK/phone.log")" -eq 1

# a second crash loop: kill -9 right after a burst of requests
burst=()
for i in 1 2 3 4 5; do
  ( ap sign --msisdn +35847000001 --mode async --timeout 30 --no-wait --dtbd "burst $i" >"$WORK/burst.$i" 2>&1 ) &
  burst+=($!)
done
wait "${burst[@]}"
kill -9 "$MSSPD_PID"; wait "$MSSPD_PID" 2>/dev/null
start_msspd 2 || { nok "msspd restarts again"; finish; exit 1; }
final=0; open=0
for i in 1 2 3 4 5; do
  t=$(tid_of "$(cat "$WORK/burst.$i")")
  [ -z "$t" ] && continue   # refused (406) before the crash: nothing to finish
  for _ in $(seq 1 80); do
    res=$(status_of "$t")
    grep -q "status 504" <<<"$res" || break
    sleep 0.25
  done
  if grep -q "status 504" <<<"$res"; then open=$((open + 1)); else final=$((final + 1)); fi
done
check "after the second crash every accepted transaction is final ($final final, $open open)" test "$open" -eq 0 -a "$final" -ge 1
dups=$(awk '$1 == "PROMPT" { n[$3]++ } END { d = 0; for (k in n) if (n[k] > 1) d++; print d }' "$WORK/phone.log")
check "still no transaction prompted twice" test "$dups" -eq 0

finish
