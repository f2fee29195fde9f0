using System.Globalization;
using Apache.Arrow;
using Apache.Arrow.Types;
using Parquet;
using Parquet.Schema;
using Field = Apache.Arrow.Field;

namespace RapidFire.Spec.Data.Formats;

/// <summary>
/// Reads a Parquet ESF with Parquet.Net, one Arrow record batch per row group. Column types map to Arrow:
/// booleans, 8- to 64-bit integers (signed and unsigned), float and double keep their type; <c>decimal</c>
/// becomes Double; strings become String; dates, times and GUIDs become String (ISO 8601, invariant culture).
/// Nested, repeated and binary columns are errors naming the column.
/// </summary>
internal static class ParquetEsfReader
{
    public static EsfContent? Read(Stream stream, ErrorList errors) =>
        ReadAsync(EsfReader.Seekable(stream), errors).GetAwaiter().GetResult();

    private static async Task<EsfContent?> ReadAsync(Stream stream, ErrorList errors)
    {
        await using var reader = await ParquetReader.CreateAsync(stream, null, leaveStreamOpen: true);
        var names = reader.Schema.Fields.Select(f => f.Name).ToList();
        if (!EsfColumns.CheckNames(names, errors))
            return null;

        var dataFields = new List<DataField>();
        foreach (var field in reader.Schema.Fields)
        {
            if (field is not DataField data || data.IsArray)
                errors.Add(null, $"column '{field.Name}' is a nested or repeated Parquet column; an ESF holds one plain value per cell");
            else if (ArrowTypeOf(data.ClrType) is null)
                errors.Add(null, $"column '{field.Name}' has the Parquet type {data.ClrType.Name}, which ESFs do not support (use integers, floats, booleans or strings)");
            else
                dataFields.Add(data);
        }
        if (dataFields.Count != reader.Schema.Fields.Count)
            return null;

        var schema = new Schema(dataFields.Select(f => new Field(f.Name, ArrowTypeOf(f.ClrType)!, nullable: true)), null);
        var batches = new List<RecordBatch>();
        for (var g = 0; g < reader.RowGroupCount; g++)
        {
            using var group = reader.OpenRowGroupReader(g);
            var length = checked((int)group.RowCount);
            if (length == 0)
                continue;
            var arrays = new List<IArrowArray>(dataFields.Count);
            foreach (var field in dataFields)
                arrays.Add(await ReadColumnAsync(group, field, length));
            batches.Add(new RecordBatch(schema, arrays, length));
        }
        return new EsfContent(schema, batches);
    }

    private static IArrowType? ArrowTypeOf(Type clr) => clr switch
    {
        _ when clr == typeof(bool) => BooleanType.Default,
        _ when clr == typeof(sbyte) => Int8Type.Default,
        _ when clr == typeof(byte) => UInt8Type.Default,
        _ when clr == typeof(short) => Int16Type.Default,
        _ when clr == typeof(ushort) => UInt16Type.Default,
        _ when clr == typeof(int) => Int32Type.Default,
        _ when clr == typeof(uint) => UInt32Type.Default,
        _ when clr == typeof(long) => Int64Type.Default,
        _ when clr == typeof(ulong) => UInt64Type.Default,
        _ when clr == typeof(float) => FloatType.Default,
        _ when clr == typeof(double) || clr == typeof(decimal) => DoubleType.Default,
        _ when clr == typeof(string) || clr == typeof(ReadOnlyMemory<char>) => StringType.Default,
        _ when clr == typeof(DateTime) || clr == typeof(DateOnly) || clr == typeof(TimeOnly) || clr == typeof(Guid) => StringType.Default,
        _ => null,
    };

    private static async Task<IArrowArray> ReadColumnAsync(ParquetRowGroupReader group, DataField field, int length)
    {
        var clr = field.ClrType;
        if (clr == typeof(string) || clr == typeof(ReadOnlyMemory<char>))
        {
            var values = new string?[length];
            await group.ReadAsync(field, values.AsMemory(), null);
            return Strings(values);
        }
        if (clr == typeof(bool)) return Build(await Read<bool>(group, field, length), new BooleanArray.Builder(), (b, v) => b.Append(v), b => b.AppendNull(), b => b.Build());
        if (clr == typeof(sbyte)) return Primitive(await Read<sbyte>(group, field, length), new Int8Array.Builder());
        if (clr == typeof(byte)) return Primitive(await Read<byte>(group, field, length), new UInt8Array.Builder());
        if (clr == typeof(short)) return Primitive(await Read<short>(group, field, length), new Int16Array.Builder());
        if (clr == typeof(ushort)) return Primitive(await Read<ushort>(group, field, length), new UInt16Array.Builder());
        if (clr == typeof(int)) return Primitive(await Read<int>(group, field, length), new Int32Array.Builder());
        if (clr == typeof(uint)) return Primitive(await Read<uint>(group, field, length), new UInt32Array.Builder());
        if (clr == typeof(long)) return Primitive(await Read<long>(group, field, length), new Int64Array.Builder());
        if (clr == typeof(ulong)) return Primitive(await Read<ulong>(group, field, length), new UInt64Array.Builder());
        if (clr == typeof(float)) return Primitive(await Read<float>(group, field, length), new FloatArray.Builder());
        if (clr == typeof(double)) return Primitive(await Read<double>(group, field, length), new DoubleArray.Builder());
        if (clr == typeof(decimal))
            return Primitive((await Read<decimal>(group, field, length)).Select(v => v is { } d ? (double?)(double)d : null).ToArray(), new DoubleArray.Builder());
        if (clr == typeof(DateTime))
            return Strings((await Read<DateTime>(group, field, length)).Select(v => v?.ToString("o", CultureInfo.InvariantCulture)));
        if (clr == typeof(DateOnly))
            return Strings((await Read<DateOnly>(group, field, length)).Select(v => v?.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)));
        if (clr == typeof(TimeOnly))
            return Strings((await Read<TimeOnly>(group, field, length)).Select(v => v?.ToString("HH:mm:ss.FFFFFFF", CultureInfo.InvariantCulture)));
        if (clr == typeof(Guid))
            return Strings((await Read<Guid>(group, field, length)).Select(v => v?.ToString()));
        throw new NotSupportedException($"column '{field.Name}' has the unsupported Parquet type {clr.Name}");
    }

    private static async Task<T?[]> Read<T>(ParquetRowGroupReader group, DataField field, int length) where T : struct
    {
        if (!field.IsNullable)
        {
            // A required column has no definition levels: read it through the plain overload. (The nullable one, given
            // a required column, once returned a null among the values under parallel load; suspected to read a pooled
            // definition-level buffer it never filled.)
            var required = new T[length];
            await group.ReadAsync<T>(field, required.AsMemory(), null);
            return System.Array.ConvertAll(required, v => (T?)v);
        }
        var values = new T?[length];
        await group.ReadAsync<T>(field, values.AsMemory(), null);
        return values;
    }

    private static IArrowArray Primitive<T, TArray, TBuilder>(T?[] values, PrimitiveArrayBuilder<T, TArray, TBuilder> builder)
        where T : struct, IEquatable<T>
        where TArray : IArrowArray
        where TBuilder : class, IArrowArrayBuilder<TArray>
        => Build(values, builder, (b, v) => b.Append(v), b => b.AppendNull(), b => b.Build());

    private static IArrowArray Build<T, TBuilder>(T?[] values, TBuilder builder, Action<TBuilder, T> append, Action<TBuilder> appendNull,
        Func<TBuilder, IArrowArray> build) where T : struct
    {
        foreach (var value in values)
            if (value is { } v) append(builder, v); else appendNull(builder);
        return build(builder);
    }

    private static StringArray Strings(IEnumerable<string?> values)
    {
        var builder = new StringArray.Builder();
        foreach (var value in values)
            if (value is null) builder.AppendNull(); else builder.Append(value);
        return builder.Build();
    }
}
