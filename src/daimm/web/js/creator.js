// The creator's browser module (../static/daimm-creator.js, `make web`): encryption in the daimm
// format, key envelopes, the wallet-derived creator key, CIDs, CARs and the signed upload. Loaded
// by the pages that publish; exposed as `window.daimmCreator` (the browser tests drive it there).
import * as aead from "./aead.js";
import * as creatorkey from "./creatorkey.js";
import * as envelope from "./envelope.js";
import * as ipfs from "./ipfs.js";
import { setupCreatorPage } from "./publish.js";

window.daimmCreator = { aead, creatorkey, envelope, ipfs, setupCreatorPage };
