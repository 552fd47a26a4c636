// Drives the session bundle for tests/unit/web/test_session_js.py: one JSON command on stdin,
// one JSON answer on stdout. argv: the bundle, viem's accounts module.
const s = await import(process.argv[2]);
const input = JSON.parse(await new Promise((done) => {
  let text = ""; process.stdin.on("data", (c) => (text += c)); process.stdin.on("end", () => done(text));
}));
const plain = (v) => JSON.parse(JSON.stringify(v, (_, x) => (typeof x === "bigint" ? x.toString() : x)));
const out = {};
out.parsed = [];
for (const text of input.parse) {
  try {
    const key = await s.parseApiKey(text);
    out.parsed.push({ ok: true, session: plain(key.session), token: key.token, hash: key.hash,
                      key: key.account.address });
  } catch (error) {
    out.parsed.push({ ok: false, code: error.code, message: error.message });
  }
}
if (input.make) {
  const holder = (await import(process.argv[3])).privateKeyToAccount(input.make.holderKey);
  const made = await s.createApiKey({ holder: holder.address, signTypedData: (d) => holder.signTypedData(d),
                                      modelId: 3n, nonce: 2n, chainId: input.make.chainId,
                                      registry: input.make.registry, maxCalls: 7n });
  const info = { relayer: input.make.relayer, chainId: input.make.chainId, registry: input.make.relayerRegistry };
  out.made = { text: made.text, headers: await s.sessionHeaders(made, info, 3, '{"inputs":{}}') };
}
out.receipts = [];
for (const r of input.receipts || []) {
  try {
    await s.verifyReceipt(r.text, r.body, r.expect);
    out.receipts.push("ok");
  } catch (error) {
    out.receipts.push(`${error.name}: ${error.message}`);
  }
}
console.log(JSON.stringify(out));
