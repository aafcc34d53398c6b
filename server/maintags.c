/* maintags.c -- the main DICOM tags Orthanc 1.10 indexes at each level (its defaults), the
 * tags that appear in MainDicomTags of the REST resources. */
#include "server/server.h"
#include "storage/storage.h"

static const SrvMainTag patient[] = {
    { 0x00100010, "PatientName" },
    { 0x00100020, "PatientID" },
    { 0x00100030, "PatientBirthDate" },
    { 0x00100040, "PatientSex" },
    { 0x00101000, "OtherPatientIDs" },
};
static const SrvMainTag study[] = {
    { 0x00080020, "StudyDate" },
    { 0x00080030, "StudyTime" },
    { 0x00200010, "StudyID" },
    { 0x00081030, "StudyDescription" },
    { 0x00080050, "AccessionNumber" },
    { 0x0020000d, "StudyInstanceUID" },
    { 0x00321060, "RequestedProcedureDescription" },
    { 0x00080080, "InstitutionName" },
    { 0x00321032, "RequestingPhysician" },
    { 0x00080090, "ReferringPhysicianName" },
};
static const SrvMainTag series[] = {
    { 0x00080021, "SeriesDate" },
    { 0x00080031, "SeriesTime" },
    { 0x00080060, "Modality" },
    { 0x00080070, "Manufacturer" },
    { 0x00081010, "StationName" },
    { 0x0008103e, "SeriesDescription" },
    { 0x00180015, "BodyPartExamined" },
    { 0x00180024, "SequenceName" },
    { 0x00181030, "ProtocolName" },
    { 0x00200011, "SeriesNumber" },
    { 0x00181090, "CardiacNumberOfImages" },
    { 0x00201002, "ImagesInAcquisition" },
    { 0x00200105, "NumberOfTemporalPositions" },
    { 0x00540081, "NumberOfSlices" },
    { 0x00540101, "NumberOfTimeSlices" },
    { 0x0020000e, "SeriesInstanceUID" },
    { 0x00200037, "ImageOrientationPatient" },
    { 0x00541000, "SeriesType" },
    { 0x00081070, "OperatorsName" },
    { 0x00400254, "PerformedProcedureStepDescription" },
    { 0x00181400, "AcquisitionDeviceProcessingDescription" },
    { 0x00180010, "ContrastBolusAgent" },
};
static const SrvMainTag instance[] = {
    { 0x00080012, "InstanceCreationDate" },
    { 0x00080013, "InstanceCreationTime" },
    { 0x00200012, "AcquisitionNumber" },
    { 0x00541330, "ImageIndex" },
    { 0x00200013, "InstanceNumber" },
    { 0x00280008, "NumberOfFrames" },
    { 0x00200100, "TemporalPositionIdentifier" },
    { 0x00080018, "SOPInstanceUID" },
    { 0x00200032, "ImagePositionPatient" },
    { 0x00204000, "ImageComments" },
    { 0x00200037, "ImageOrientationPatient" },
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

const SrvMainTag *srv_main_tags(int level, size_t *n)
{
    switch (level) {
    case IDX_PATIENT: *n = N(patient); return patient;
    case IDX_STUDY: *n = N(study); return study;
    case IDX_SERIES: *n = N(series); return series;
    case IDX_INSTANCE: *n = N(instance); return instance;
    default: *n = 0; return NULL;
    }
}

const char *srv_main_tag_name(uint32_t tag)
{
    for (int level = 0; level < IDX_LEVELS; level++) {
        size_t n;
        const SrvMainTag *t = srv_main_tags(level, &n);
        for (size_t i = 0; i < n; i++)
            if (t[i].tag == tag) return t[i].name;
    }
    return NULL;
}
