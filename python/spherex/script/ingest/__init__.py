"""The ingest pipeline behind ``butler ingest-simulated`` (`simulated`) and ``butler ingest-spherex``
(`level2`), in the order a file goes through it:

1. `sources`: find the files (local or remote) and record the state each had when checked;
2. `metadata`: read each file's headers into `~spherex.instrument.ObservationMetadata` and group them
   by run and exposure;
3. `exposures` (and `darks`): build the dimension records and datasets of each exposure
   (`data_ids`: data IDs expanded from those records) and write them, one transaction per batch;
4. `transfer`: how files go into the datastore, and the removal of moved sources once committed;
   the sources are verified unchanged inside the same transaction (`sources.CheckedSources`);
5. `report`: what landed, what was already there and what failed, file by file.

`repository` opens a repository for ingest and checks collection names; `targets` ingests target
catalogues for the spectrophotometry.
"""
