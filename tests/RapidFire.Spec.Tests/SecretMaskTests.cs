using RapidFire.Spec;

namespace RapidFire.Spec.Tests;

public sealed class SecretMaskTests
{
    [Theory]
    [InlineData("api_key")]
    [InlineData("openai_api_key")]
    [InlineData("apiKey")]
    [InlineData("apikey")]
    [InlineData("API_KEY")]
    [InlineData("key")]
    [InlineData("wandb_key")]
    [InlineData("api_keys")]
    [InlineData("aws_secret_access_key")]
    [InlineData("AWS_SECRET_ACCESS_KEY")]
    [InlineData("awsSecretAccessKey")]
    [InlineData("token")]
    [InlineData("hf_token")]
    [InlineData("HF_TOKEN")]
    [InlineData("HFToken")]
    [InlineData("hftoken")]
    [InlineData("access_token")]
    [InlineData("authToken")]
    [InlineData("password")]
    [InlineData("db_password")]
    [InlineData("dbPassword")]
    [InlineData("passwd")]
    [InlineData("pwd")]
    [InlineData("passphrase")]
    [InlineData("secret")]
    [InlineData("client_secret")]
    [InlineData("clientsecret")]
    [InlineData("credentials")]
    [InlineData("gcp-credential-file")]
    [InlineData("auth")]
    [InlineData("authorization")]
    [InlineData("storage.s3.secret_access_key")]
    [InlineData("data.hf_token")]
    [InlineData("credentials.user")]
    public void A_secret_looking_name_is_secret_in_any_segment(string path) => Assert.True(SecretMask.IsSecret(path), path);

    [Theory]
    [InlineData("optimizer.args.lr")]
    [InlineData("hidden")]
    [InlineData("keep_checkpoints")]
    [InlineData("keypoints")]
    [InlineData("num_keypoints")]
    [InlineData("key_dim")]
    [InlineData("num_key_value_heads")]
    [InlineData("monkey")]
    [InlineData("hockey_team")]
    [InlineData("max_tokens")]
    [InlineData("token_dropout")]
    [InlineData("pad_token_id")]
    [InlineData("pad_token")]
    [InlineData("eos_token")]
    [InlineData("bosToken")]
    [InlineData("tokenizer")]
    [InlineData("tokenizer.mask_token")]
    [InlineData("author")]
    [InlineData("input_keys")]
    [InlineData("aws_access_key_id")] // identifies the key; AWS shows it in consoles and logs
    [InlineData("")]
    public void Ordinary_knob_names_are_not_secret(string path) => Assert.False(SecretMask.IsSecret(path), path);

    [Fact]
    public void Masking_a_config_hides_secret_values_keeps_the_others_and_leaves_the_original_as_it_was()
    {
        var config = Config.FromJson("""
            {"hidden":64,"api_key":"sk-live-123","credentials":{"user":"u","pass":"p"},"data":{"hf_token":"hf_abc","repo":"org/x"},
             "sources":[{"name":"a","token":"t1"},{"name":"b"}],"db_url":"postgres://rf:hunter2@db/exp","epochs":3,"batch_size":8,
             "optimizer":{"name":"Adam","args":{"lr":0.001}},"unset_token":null}
            """);

        var masked = SecretMask.Mask(config);

        Assert.Equal(
            """{"hidden":64,"api_key":"***","credentials":"***","data":{"hf_token":"***","repo":"org/x"},"sources":[{"name":"a","token":"***"},{"name":"b"}],"db_url":"postgres://rf:***@db/exp","epochs":3,"batch_size":8,"optimizer":{"name":"Adam","args":{"lr":0.001}},"unset_token":null}""",
            masked.ToJson());
        Assert.Equal("sk-live-123", config.Get<string>("api_key")); // the spec still gets the real value
        Assert.Contains(masked.Leaves(), kv => kv.Key == "data.hf_token" && (string)kv.Value! == "***");
    }

    [Fact]
    public void A_config_without_secrets_is_returned_as_it_is()
    {
        var config = Config.FromJson("""{"hidden":64,"layers":[1,2],"optimizer":{"name":"Adam","args":{"lr":0.001}}}""");

        Assert.Same(config, SecretMask.Mask(config));
    }

    [Fact]
    public void A_leaf_or_a_text_is_masked_by_its_path()
    {
        Assert.Equal("***", SecretMask.Mask("optimizer.args.api_key", "k"));
        Assert.Equal(0.1, SecretMask.Mask("optimizer.args.lr", 0.1));
        Assert.Null(SecretMask.Mask("token", null));
        Assert.Equal("***", SecretMask.MaskText("token", "abc"));
        Assert.Equal("", SecretMask.MaskText("token", ""));
        Assert.Equal("64", SecretMask.MaskText("hidden", "64"));
    }

    [Theory]
    [InlineData("Host=db;Database=rf;Username=rf;Password=hunter2", "Host=db;Database=rf;Username=rf;Password=***")]
    [InlineData("Host=db;Password=hunter2;Database=rf", "Host=db;Password=***;Database=rf")]
    [InlineData("Server=db;User Id=sa;Pwd=p@ss w0rd;", "Server=db;User Id=sa;Pwd=***;")]
    [InlineData("Host=db; password = \"a;b\" ; Database=rf", "Host=db; password = \"***\" ; Database=rf")]
    [InlineData("DefaultEndpointsProtocol=https;AccountName=acc;AccountKey=abc==;EndpointSuffix=core", "DefaultEndpointsProtocol=https;AccountName=acc;AccountKey=***;EndpointSuffix=core")]
    [InlineData("postgresql://rf:hunter2@db:5432/exp?sslmode=require", "postgresql://rf:***@db:5432/exp?sslmode=require")]
    [InlineData("https://user:pa55@example.com/x and http://other@host/", "https://user:***@example.com/x and http://other@host/")]
    [InlineData("GET /?token=abc&all=true", "GET /?token=***&all=true")]
    [InlineData("AWS_SECRET_ACCESS_KEY=wJalr AWS_REGION=eu", "AWS_SECRET_ACCESS_KEY=***")]
    [InlineData("{\"password\": \"x\\\"y\", \"user\": \"u\"}", "{\"password\": \"***\", \"user\": \"u\"}")]
    [InlineData("Host=db;Database=rf;Username=rf", "Host=db;Database=rf;Username=rf")]
    [InlineData("clone run 1 hidden=64 api_key=*** requested", "clone run 1 hidden=64 api_key=*** requested")]
    [InlineData("", "")]
    public void Connection_strings_have_their_passwords_masked(string text, string expected) =>
        Assert.Equal(expected, SecretMask.MaskConnectionString(text));
}
