namespace RapidFire.Actors.Checkpoints;

/// <summary>Names the checkpoint of a run taken after its (0-based) <paramref name="Epoch"/> and <paramref name="Chunk"/> completed.</summary>
public sealed record CheckpointRef(int RunId, int Epoch, int Chunk);
