// QIDO-RS and WADO-RS against the server through dicomweb-client (the library OHIF uses), from
// Node. usage: node client.mjs URL USER PASSWORD   (USER "" : no authentication)
// Expects pydicom's CT_small.dcm and MR_small.dcm stored (79_dicomweb_client.sh uploads them).
// Prints "PASS: ..." lines; exits 1 at the first failed check.
import XMLHttpRequest from "xhr2";
import { api } from "dicomweb-client";

globalThis.XMLHttpRequest = XMLHttpRequest;

const [url, user, password] = process.argv.slice(2);
const headers = user ? { Authorization: "Basic " + Buffer.from(`${user}:${password}`).toString("base64") } : {};
const client = new api.DICOMwebClient({ url: `${url}/dicom-web`, headers });

const CT = {
  study: "1.3.6.1.4.1.5962.1.2.1.20040119072730.12322",
  series: "1.3.6.1.4.1.5962.1.3.1.1.20040119072730.12322",
  sop: "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322",
};

function check(cond, what) {
  if (!cond) {
    console.log(`FAIL: ${what}`);
    process.exit(1);
  }
}
const value = (ds, tag) => (ds[tag] && ds[tag].Value ? ds[tag].Value[0] : undefined);

// QIDO-RS
const studies = await client.searchForStudies();
check(studies.length === 2, `two studies (${studies.length})`);
const byId = await client.searchForStudies({ queryParams: { PatientID: "1CT1" } });
check(byId.length === 1 && value(byId[0], "0020000D") === CT.study, "search by PatientID");
check(value(byId[0], "00100010").Alphabetic === "CompressedSamples^CT1", "PN Alphabetic");
check(value(byId[0], "00201208") === 1, "NumberOfStudyRelatedInstances is a number");
const wild = await client.searchForStudies({ queryParams: { PatientName: "CompressedSamples*", limit: 1, offset: 1 } });
check(wild.length === 1, "wildcard + limit/offset");
const series = await client.searchForSeries({ studyInstanceUID: CT.study });
check(series.length === 1 && value(series[0], "0020000E") === CT.series && value(series[0], "00080060") === "CT",
  "series of the study");
const allSeries = await client.searchForSeries({ queryParams: { Modality: "MR" } });
check(allSeries.length === 1, "series by Modality");
const inst = await client.searchForInstances({ studyInstanceUID: CT.study, seriesInstanceUID: CT.series });
check(inst.length === 1 && value(inst[0], "00080018") === CT.sop, "instances of the series");
const withField = await client.searchForStudies({ queryParams: { PatientID: "1CT1", includefield: "00080080" } });
check(withField[0]["00080080"] !== undefined, "includefield");
console.log("PASS: QIDO-RS through dicomweb-client");

// WADO-RS metadata
const sm = await client.retrieveStudyMetadata({ studyInstanceUID: CT.study });
check(sm.length === 1 && value(sm[0], "00080018") === CT.sop, "study metadata");
const rm = await client.retrieveSeriesMetadata({ studyInstanceUID: CT.study, seriesInstanceUID: CT.series });
check(rm.length === 1 && value(rm[0], "00280010") === 128 && value(rm[0], "00280011") === 128, "series metadata Rows/Columns");
check(value(rm[0], "00180050") === 5, "DS as a number (SliceThickness)");
const im = await client.retrieveInstanceMetadata({ studyInstanceUID: CT.study, seriesInstanceUID: CT.series, sopInstanceUID: CT.sop });
check(im.length === 1, "instance metadata");
const pixel = im[0]["7FE00010"];
check(pixel && pixel.BulkDataURI && pixel.BulkDataURI.includes(`/instances/${CT.sop}/bulk/7fe00010`), "PixelData by BulkDataURI");
console.log("PASS: WADO-RS metadata through dicomweb-client");

// WADO-RS frames, bulk data, instance, rendered
const frames = await client.retrieveInstanceFrames({
  studyInstanceUID: CT.study, seriesInstanceUID: CT.series, sopInstanceUID: CT.sop, frameNumbers: [1],
});
check(frames.length === 1 && frames[0].byteLength === 128 * 128 * 2, `one 128x128x16-bit frame (${frames[0] && frames[0].byteLength})`);
const bulk = await client.retrieveBulkData({ BulkDataURI: pixel.BulkDataURI });
check(bulk.length === 1 && bulk[0].byteLength === 128 * 128 * 2, "PixelData bulk data");
check(Buffer.from(bulk[0]).equals(Buffer.from(frames[0])), "bulk PixelData equals frame 1");
const instance = await client.retrieveInstance({ studyInstanceUID: CT.study, seriesInstanceUID: CT.series, sopInstanceUID: CT.sop });
check(Buffer.from(instance).subarray(128, 132).toString() === "DICM", "retrieveInstance gives a Part-10 file");
const study = await client.retrieveStudy({ studyInstanceUID: CT.study });
check(study.length === 1 && Buffer.from(study[0]).subarray(128, 132).toString() === "DICM", "retrieveStudy");
const rendered = await client.retrieveInstanceRendered({
  studyInstanceUID: CT.study, seriesInstanceUID: CT.series, sopInstanceUID: CT.sop,
  mediaTypes: [{ mediaType: "image/jpeg" }],
});
const r = Buffer.from(Array.isArray(rendered) ? rendered[0] : rendered); // the client wraps single parts
check(r[0] === 0xff && r[1] === 0xd8, "rendered JPEG");
console.log("PASS: WADO-RS frames, bulk data, instance, study, rendered through dicomweb-client");
