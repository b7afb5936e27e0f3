# A notebook cell in the server of a member of a group granted `s3://team-a/`
# (read) and nothing on `s3://team-b/`: no keys in any file or variable.
# The pod's ServiceAccount gives it a web identity (IRSA); pandas reads s3://
# paths through s3fs, which finds those credentials by itself.
# (The tests run this cell in a user's server: tests/integration/test_data_hub.py.)
import pandas as pd

df = pd.read_csv("s3://team-a/x.csv")
print(df.to_string(index=False))

try:
    pd.read_csv("s3://team-b/x.csv")
except PermissionError:  # s3fs's name for S3's 403 (AccessDenied)
    print("team-b: refused")
