#!/usr/bin/env bash
# run.sh - what `make run` does at this stage of the project: the message
# layer and msspctl are built; the server (msspd) arrives with the
# signature-path work.  Shows the tools working on a real client message.
set -eu
BUILD=${1:-build/debug}
SHARED=${MSSP_SHARED:-../shared}
cat <<TXT
OpenMSSP is built ($BUILD/bin).

msspd, the server, is not part of this build yet.  When it is, 'make run' will:
  - create ./run/ with 'msspd init --demo' (config, development PKI, demo AP
    http://demo.ap/ and demo users +35847000001..008) if it does not exist,
  - start msspd (AE on 9443 with mutual TLS, ME 9444, phones 9445, metrics 9446)
    and mss-phone --demo,
  - print a ready mss-ap and curl command that sign for +35847000001.

What works today - the TS 102 204 message layer, through msspctl:

TXT
example=tests/data/corpus/clients/swisscom-shell/sign.soap.xml
[ -f "$example" ] || example=$(ls tests/data/corpus/clients/*/*.xml | head -1)
echo "\$ $BUILD/bin/msspctl decode $example"
"$BUILD/bin/msspctl" decode "$example" || true
echo
echo "\$ $BUILD/bin/msspctl profile match --comparison minimum --requested mss::sign:loa3 --available mss:demo:authn:loa3:app,mss:demo:sign:loa3:app"
"$BUILD/bin/msspctl" profile match --comparison minimum --requested mss::sign:loa3 \
  --available mss:demo:authn:loa3:app,mss:demo:sign:loa3:app || true
echo
echo "Try: $BUILD/bin/msspctl decode FILE|-    $BUILD/bin/msspctl encode --soap FILE    $BUILD/bin/msspctl --help"
