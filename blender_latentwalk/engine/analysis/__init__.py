"""Analysis: a song file in, one value per video frame out.

`pipeline.analyze` runs the stages over a song (the driver: it wires them and owns the two
threads); each stage is a module of small functions over numpy arrays, in the order a song
goes through them:

- `audio`: decoding, mono, streaming resampling
- `spectra`: STFT frames and power spectra on band hops and onset hops
- `levels`: band levels, overall level and chroma per band hop (`filterbanks`: the bands',
  mel and chroma filter banks)
- `separation`: the percussive and harmonic parts of the mix, and a part as a signal
- `stems`: bands and curves that listen to stem files, checked against the song's timeline
- `onsets`: the onset flux per onset hop, and the times hits begin
- `anchoring`: band levels held from the hit that raised them
- `aggregate`: hop-level measurements to video frames (the timing rule is `timing`)
- `shaping`: normalisation and attack/release/gate shaping to 0..1 curves
- `beats`: beat tracking at the level a listener taps, tempo regions, beats on video frames
- `structure`: bars (downbeats), sections and their labels, drops; the beat, bar, section and drop curves
- `features`: the `Features` file; `bands`: the `Band` definitions and analysis sample rates

Naming: a "hop" is an STFT frame (a column of a spectrogram), a "video frame" a frame of the
scene; ``n_frames`` counts video frames, as in the `Features` file.

May import: nothing else.
"""
