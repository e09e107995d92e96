# For `kerberos-bot check`: which version of the module the host has, without importing it.
$found = Get-Module -ListAvailable -Name 'AzureADHybridAuthenticationManagement' |
    Sort-Object Version -Descending | Select-Object -First 1
$version = $null
if ($found) { $version = $found.Version.ToString() }
ConvertTo-Json -Compress -InputObject @{
    Version = $version
    PowerShell = $PSVersionTable.PSVersion.ToString()
    Computer = $env:COMPUTERNAME
}
