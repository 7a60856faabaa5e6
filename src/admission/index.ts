export * from './constants.js'
export * from './errors.js'
export {
  signAdmission, openAdmission, judgeAdmission, verifyAdmission, admissionStatus, admissionBody, admissionCertificate,
  type AdmissionBody, type AdmissionCertificate, type AdmittedIdentity, type AdmissionTrust, type AdmissionStatus, type SignAdmissionOptions, type JudgeOptions
} from './certificate.js'
