using Apache.Arrow;
using Apache.Arrow.Types;

namespace RapidFire.Spec.Data;

/// <summary>What kind of values an Arrow column holds, as far as an ESF reader cares.</summary>
internal enum ValueKind { Integer, Floating, Boolean, String, Other }

/// <summary>
/// Reading single cells of Arrow arrays without boxing: integers, floats, booleans and strings (plain, large and
/// view strings), looking through dictionary encoding. Anything else is <see cref="ValueKind.Other"/>.
/// </summary>
internal static class ArrowValues
{
    public static ValueKind KindOf(IArrowType type) => type switch
    {
        DictionaryType d => KindOf(d.ValueType),
        Int8Type or Int16Type or Int32Type or Int64Type or UInt8Type or UInt16Type or UInt32Type or UInt64Type => ValueKind.Integer,
        HalfFloatType or FloatType or DoubleType => ValueKind.Floating,
        BooleanType => ValueKind.Boolean,
        StringType or LargeStringType or StringViewType => ValueKind.String,
        _ => ValueKind.Other,
    };

    /// <summary>The Arrow name of a column's type, as shown in errors (<c>int64</c>, <c>utf8</c>, <c>double</c>...).</summary>
    public static string TypeName(IArrowType type) =>
        type is DictionaryType d ? $"dictionary<{TypeName(d.ValueType)}>" : type.Name;

    /// <summary>The array and index that hold the value of row <paramref name="index"/>, looking through a dictionary.</summary>
    public static (IArrowArray Array, int Index) Resolve(IArrowArray array, int index)
    {
        if (array is not DictionaryArray dictionary)
            return (array, index);
        if (dictionary.Indices.IsNull(index))
            return (dictionary.Indices, index);
        TryGetInt64(dictionary.Indices, index, out var key);
        return (dictionary.Dictionary, checked((int)key));
    }

    public static bool IsNull(IArrowArray array, int index)
    {
        var (values, i) = Resolve(array, index);
        return values.IsNull(i);
    }

    /// <summary>Reads an integer cell; <see langword="false"/> for a null or a value beyond <see cref="long"/>.</summary>
    public static bool TryGetInt64(IArrowArray array, int index, out long value)
    {
        var (values, i) = Resolve(array, index);
        long? result = values switch
        {
            Int8Array a => a.GetValue(i),
            Int16Array a => a.GetValue(i),
            Int32Array a => a.GetValue(i),
            Int64Array a => a.GetValue(i),
            UInt8Array a => a.GetValue(i),
            UInt16Array a => a.GetValue(i),
            UInt32Array a => a.GetValue(i),
            UInt64Array a => a.GetValue(i) is { } u && u <= long.MaxValue ? (long)u : null,
            _ => null,
        };
        value = result ?? 0;
        return result.HasValue;
    }

    /// <summary>Reads a numeric cell (integer or floating) as a double; <see langword="false"/> for a null.</summary>
    public static bool TryGetDouble(IArrowArray array, int index, out double value)
    {
        var (values, i) = Resolve(array, index);
        double? result = values switch
        {
            HalfFloatArray a => a.GetValue(i) is { } h ? (double)h : null,
            FloatArray a => a.GetValue(i),
            DoubleArray a => a.GetValue(i),
            UInt64Array a => a.GetValue(i),
            _ => TryGetInt64(values, i, out var l) ? l : null,
        };
        value = result ?? 0;
        return result.HasValue;
    }

    /// <summary>The text of a string cell, or <see langword="null"/>.</summary>
    public static string? GetString(IArrowArray array, int index)
    {
        var (values, i) = Resolve(array, index);
        if (values.IsNull(i))
            return null;
        return values switch
        {
            StringArray a => a.GetString(i),
            LargeStringArray a => a.GetString(i),
            StringViewArray a => a.GetString(i),
            _ => null,
        };
    }

    public static bool? GetBoolean(IArrowArray array, int index)
    {
        var (values, i) = Resolve(array, index);
        return values is BooleanArray a ? a.GetValue(i) : null;
    }

    /// <summary>
    /// The cell as a CLR object: <see cref="long"/> for integers (<see cref="ulong"/> beyond its range),
    /// <see cref="double"/> or <see cref="float"/>, <see cref="bool"/>, <see cref="string"/>; <see langword="null"/>
    /// for a null; otherwise <see langword="false"/>.
    /// </summary>
    public static bool TryBox(IArrowArray array, int index, out object? value)
    {
        var (values, i) = Resolve(array, index);
        value = null;
        if (values.IsNull(i))
            return true;
        switch (KindOf(values.Data.DataType))
        {
            case ValueKind.Integer:
                value = TryGetInt64(values, i, out var l) ? l : ((UInt64Array)values).GetValue(i);
                return true;
            case ValueKind.Floating:
                value = values is FloatArray f ? f.GetValue(i) : TryGetDouble(values, i, out var d) ? d : null;
                return true;
            case ValueKind.Boolean:
                value = GetBoolean(values, i);
                return true;
            case ValueKind.String:
                value = GetString(values, i);
                return true;
            default:
                return false;
        }
    }

    /// <summary>A short rendering of a cell for error messages.</summary>
    public static string Show(IArrowArray array, int index)
    {
        if (IsNull(array, index))
            return "null";
        if (!TryBox(array, index, out var value))
            return $"a {TypeName(array.Data.DataType)} value";
        return value switch
        {
            string s => $"'{s}'",
            double d => d.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
            float f => f.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
            bool b => b ? "true" : "false",
            _ => Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? "null",
        };
    }
}
