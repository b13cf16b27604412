"""Analysis: a song file in, one value per video frame out.

Owns decoding and resampling (`audio`), the frame timing rule (`timing`), the bands and their
sample rates (`bands`, `filterbanks`), percussive/harmonic separation and stem checks
(`separation`, `stems`), beats, attack/release/gate shaping (`shaping`), the `Features` file, and
`pipeline.analyze`, which runs those stages over a song.

May import: nothing else.
"""
