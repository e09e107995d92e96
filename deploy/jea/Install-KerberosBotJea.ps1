<#
.SYNOPSIS
    Registers kerberos-bot's JEA endpoint on the management host (run as an administrator of the host).
.DESCRIPTION
    1. Installs the role capability KerberosBot.psrc into a module folder of its own.
    2. Registers KerberosBot.pssc as the session configuration "KerberosBot".
    Before: create the gMSA (New-ADServiceAccount gmsa-kerbbot -PrincipalsAllowedToRetrieveManagedPassword
    <this host>$), give it the AD rights (Domain Admins of the domain, Enterprise Admins for the forest root,
    or the delegated rights in docs/management-host.md), Install-ADServiceAccount gmsa-kerbbot here, and
    store the cloud credential as the gMSA (see Save-KerberosBotCloudCredential in the docs).
    Edit the domain names in KerberosBot.pssc first.
#>
[CmdletBinding()]
param([string]$Source = $PSScriptRoot)
$ErrorActionPreference = 'Stop'
$module = Join-Path $env:ProgramFiles 'WindowsPowerShell\Modules\KerberosBotJea'
New-Item -ItemType Directory -Force -Path (Join-Path $module 'RoleCapabilities') | Out-Null
New-ModuleManifest -Path (Join-Path $module 'KerberosBotJea.psd1') -ModuleVersion '1.0.0'
Copy-Item (Join-Path $Source 'KerberosBot.psrc') (Join-Path $module 'RoleCapabilities\KerberosBot.psrc') -Force
New-Item -ItemType Directory -Force -Path (Join-Path $env:ProgramData 'KerberosBot\Transcripts') | Out-Null
Test-PSSessionConfigurationFile -Path (Join-Path $Source 'KerberosBot.pssc') | Out-Null
Register-PSSessionConfiguration -Name 'KerberosBot' -Path (Join-Path $Source 'KerberosBot.pssc') -Force
Get-PSSessionConfiguration -Name 'KerberosBot' | Select-Object -Property 'Name', 'RunAsVirtualAccount', 'GroupManagedServiceAccount'
