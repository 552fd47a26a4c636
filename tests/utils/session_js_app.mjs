// An application using the session bundle, for tests/e2e/test_session_js.py: one JSON command on
// stdin, one JSON answer on stdout. argv: the bundle, viem.
const { SessionClient, authorisedRelayers } = await import(process.argv[2]);
const { createPublicClient, http } = await import(process.argv[3]);
const input = JSON.parse(await new Promise((done) => {
  let text = ""; process.stdin.on("data", (c) => (text += c)); process.stdin.on("end", () => done(text));
}));
const out = {};
if (input.rpc) {
  const client = createPublicClient({ transport: http(input.rpc) });
  out.relayers = await authorisedRelayers(client, input.relayerRegistry, input.modelId);
}
const client = new SessionClient(input.apiKey, input.relayers);
out.calls = [];
for (let i = 0; i < input.calls; i++) {
  try {
    const answer = await client.predict(input.modelId, { inputs: input.inputs });
    out.calls.push({ outputs: answer.outputs, relayer: answer.receipt.relayer, signer: answer.relayer });
  } catch (error) {
    out.calls.push({ error: error.name, code: error.code ?? null, status: error.status ?? null,
                     message: error.message });
  }
}
console.log(JSON.stringify(out));
