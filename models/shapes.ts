/** What every model of the study takes and gives. */
export const IMAGE_SIZE = 28;
export const NUM_CLASSES = 10;
