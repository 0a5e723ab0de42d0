package coordinator

// KBSCanonical exposes kbsCanonical to the external interop test.
var KBSCanonical = kbsCanonical
