//! SMS on the wire: GSM 03.38 alphabets, segmentation, 03.40 TPDUs, reassembly.
