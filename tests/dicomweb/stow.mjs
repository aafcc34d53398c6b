// STOW-RS against the server through dicomweb-client's storeInstances (the call OHIF's upload
// makes), from Node. usage: node stow.mjs URL USER PASSWORD FILE...   (USER "" : no auth)
// Stores the files in one request; checks the PS3.18 answer lists each as stored and that
// QIDO-RS then finds their study. Prints "PASS: ..." lines; exits 1 at the first failed check.
import fs from "node:fs";
import XMLHttpRequest from "xhr2";
import { api } from "dicomweb-client";

globalThis.XMLHttpRequest = XMLHttpRequest;

const [url, user, password, ...files] = process.argv.slice(2);
const headers = user ? { Authorization: "Basic " + Buffer.from(`${user}:${password}`).toString("base64") } : {};
const client = new api.DICOMwebClient({ url: `${url}/dicom-web`, headers });

function check(cond, what) {
  if (!cond) {
    console.log(`FAIL: ${what}`);
    process.exit(1);
  }
  console.log(`PASS: ${what}`);
}

const datasets = files.map(f => {
  const b = fs.readFileSync(f);
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
});
let answer = await client.storeInstances({ datasets });
if (typeof answer === "string") answer = JSON.parse(answer);
else if (answer instanceof ArrayBuffer) answer = JSON.parse(Buffer.from(answer).toString());
const stored = answer["00081199"]?.Value || [];
const failed = answer["00081198"]?.Value || [];
check(stored.length === files.length && failed.length === 0,
  `storeInstances of ${files.length} files: ${stored.length} referenced, ${failed.length} failed`);
const study = stored[0]["00081190"].Value[0].match(/studies\/([0-9.]+)\//)[1];
const found = await client.searchForStudies({ queryParams: { StudyInstanceUID: study } });
check(found.length === 1, `QIDO-RS finds the stored study ${study}`);
