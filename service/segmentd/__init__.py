"""segmentd: which segments does this user belong to, and which users are in this segment."""
