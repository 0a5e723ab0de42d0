package coordinator

// KBSCanonical exposes kbsCanonical to the external interop test.
var KBSCanonical = kbsCanonical

// KBSEvidence exposes kbsEvidence to the external KBS tests.
var KBSEvidence = kbsEvidence
